-- Queries the running application version makes; a post-deploy migration must not break any of them (seed 002).

-- Plan#actual_limits
SELECT id, plan_id, ci_registered_project_runners, web_hook_calls FROM plan_limits WHERE plan_id = 1;

-- Admin runners page: runner managers seen in the last week
SELECT m.id, m.system_xid, r.name
FROM ci_runner_machines m JOIN ci_runners r ON r.id = m.runner_id
WHERE m.contacted_at > now() - interval '7 days'
ORDER BY m.contacted_at DESC;

-- POST /runners/verify registers a runner manager: the write path a premature foreign key breaks (seed 000)
BEGIN;
INSERT INTO ci_runners (id, runner_type, name) VALUES (9000001, 1, 'qa-runner');
INSERT INTO ci_runners_e59bb2812d (id, runner_type, name) VALUES (9000001, 1, 'qa-runner');
INSERT INTO ci_runner_machines (runner_id, system_xid, contacted_at) VALUES (9000001, 's_qa', now());
ROLLBACK;
