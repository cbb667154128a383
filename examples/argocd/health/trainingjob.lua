-- Argo CD health of a kubeforge TrainingJob (kubeforge.io/v1alpha1), read from what the operator
-- writes: status.observedGeneration, status.phase and the Succeeded / Failed / Suspended / Stalled
-- conditions (operator/kubeforge/trainingjob/status.py). A running job is Progressing, as Argo CD
-- shows a batch/v1 Job. Runs in Argo CD's Lua 5.1 sandbox: `obj` is the resource.
local hs = {}

local function condition(status, wanted)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local function is_true(status, wanted)
  local c = condition(status, wanted)
  return c ~= nil and c.status == "True"
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubeforge operator to observe the job"
  return hs
end
local generation = obj.metadata.generation or 0
if status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubeforge operator to observe generation " .. generation
  return hs
end

local message = status.message or status.phase or ""
if status.phase == "Failed" or is_true(status, "Failed") then
  local failed = condition(status, "Failed")
  hs.status = "Degraded"
  hs.message = (failed and failed.message) or message
  return hs
end
if status.phase == "Succeeded" or is_true(status, "Succeeded") then
  hs.status = "Healthy"
  hs.message = message
  return hs
end
if status.phase == "Suspended" or is_true(status, "Suspended") then
  hs.status = "Suspended"
  hs.message = message
  return hs
end
-- Pending, Running, Restarting: the operator is still working on it; a stall is worth saying.
if is_true(status, "Stalled") then
  message = condition(status, "Stalled").message .. "; " .. message
end
hs.status = "Progressing"
hs.message = message
return hs
