-- Argo CD health of a kubeforge ModelEndpoint (kubeforge.io/v1alpha1), read from what the
-- operator writes: status.observedGeneration, the Ready and RolloutBlocked conditions and status.phase
-- (operator/kubeforge/modelendpoint/status.py). Runs in Argo CD's Lua 5.1 sandbox: `obj` is the resource.
local hs = {}

local function condition(status, wanted)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubeforge operator to observe the endpoint"
  return hs
end
local generation = obj.metadata.generation or 0
if status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubeforge operator to observe generation " .. generation
  return hs
end

local ready = condition(status, "Ready")
local message = (ready and ready.message) or status.phase or ""
-- A new model failed spec.rollout.promotion (or the pinned revision is unknown): the old model still
-- serves, but what Git asks for will not happen by waiting, so not Progressing forever.
local blocked = condition(status, "RolloutBlocked")
if blocked ~= nil and blocked.status == "True" then
  hs.status = "Degraded"
  hs.message = "rollout blocked: " .. (blocked.message or blocked.reason or "")
  return hs
end
if status.phase == "Failed" or status.phase == "Degraded" then
  hs.status = "Degraded"
  local resolved = condition(status, "ModelResolved")
  if status.phase == "Failed" and resolved ~= nil and resolved.status == "False" then
    message = resolved.message or message
  end
  hs.message = message
  return hs
end
-- Scaled to zero on purpose (no autoscaler): nothing serves, and nothing is wrong.
local spec = obj.spec or {}
if spec.replicas == 0 and spec.autoscaling == nil then
  hs.status = "Suspended"
  hs.message = "Scaled to zero replicas"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end
hs.status = "Progressing"
hs.message = message
return hs
