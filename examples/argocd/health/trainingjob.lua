-- Argo CD health of a kubeforge TrainingJob (kubeforge.io/v1alpha1), read from what the operator
-- writes: status.observedGeneration, status.phase and the Succeeded / Failed / Suspended / Stalled /
-- Schedulable conditions (operator/kubeforge/trainingjob/status.py, waiting.py). A running job is Progressing, as Argo CD
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
-- Kueue preempted it: its Job is suspended until readmitted, as Argo CD shows a suspended batch/v1 Job.
if status.phase == "Preempted" then
  hs.status = "Suspended"
  hs.message = message
  return hs
end
-- The pool can never hold the workers, or they were not placed / started within the schedule
-- deadline: waiting longer will not help, a person has to act (the message names the reason).
local schedulable = condition(status, "Schedulable")
if schedulable ~= nil and schedulable.status == "False" then
  hs.status = "Degraded"
  hs.message = schedulable.message
  return hs
end
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" and stalled.reason ~= "ProgressDeadlineExceeded" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end
-- Pending, Running, Restarting: the operator is still working on it; a stall is worth saying.
if is_true(status, "Stalled") then
  message = condition(status, "Stalled").message .. "; " .. message
end
hs.status = "Progressing"
hs.message = message
return hs
