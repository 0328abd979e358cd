-- Argo CD health check for dbrestore.io/AuroraRestore
-- (argocd-cm key resource.customizations.health.dbrestore.io_AuroraRestore; docs/argocd.md).
-- An AuroraRestore is one restore run, like a Job: Healthy once it has Succeeded (or, for a dry run, Planned),
-- Degraded once it failed (also while cleaning up after the failure) or was cancelled, Progressing while the
-- operator works on it or has not yet seen its current spec.
-- Plain Lua 5.1, as Argo CD runs it.
local function text(value)
  if value ~= nil and value ~= "" then
    return value
  end
  return nil
end

local hs = {}
local metadata = obj.metadata or {}
local status = obj.status

if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end

if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = text(status and status.message) or "Waiting for the operator to accept the restore"
  return hs
end

if metadata.generation ~= nil and status.observedGeneration ~= metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(metadata.generation)
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = text(status.message) or "Restore succeeded"
elseif phase == "Planned" then
  hs.status = "Healthy"
  hs.message = text(status.message) or "Dry run planned"
elseif phase == "Failed" or phase == "CleaningUpAfterFailure" then
  hs.status = "Degraded"
  hs.message = text(status.failure and status.failure.message) or text(status.message) or "Restore failed"
elseif phase == "Cancelled" then
  hs.status = "Degraded"
  hs.message = text(status.message) or "Restore cancelled"
else
  hs.status = "Progressing"
  hs.message = text(status.message) or phase
end
return hs
