-- Rows the application wrote before this deploy; the demo loads them after the regular migrations.
INSERT INTO plan_limits (plan_id, ci_registered_project_runners, web_hook_calls) VALUES (1, 1000, 500), (2, 5000, 2000);

INSERT INTO ci_runners (id, runner_type, name, contacted_at) VALUES
  (1, 1, 'instance-runner-1', now() - interval '1 hour'),
  (2, 2, 'group-runner-7', now() - interval '3 days'),
  (3, 3, 'project-runner-42', now() - interval '30 days');

INSERT INTO ci_runner_machines (runner_id, system_xid, contacted_at) VALUES
  (1, 's_0a1b2c3d4e5f', now() - interval '1 hour'),
  (1, 's_6a7b8c9d0e1f', now() - interval '2 hours'),
  (2, 's_7f8e9d0c1b2a', now() - interval '3 days'),
  (3, 's_3c4d5e6f7a8b', now() - interval '30 days');

SELECT setval(pg_get_serial_sequence('ci_runners', 'id'), 3);

INSERT INTO chat_names (id, user_id, chat_id, chat_name) VALUES (1, 10, 'U024BE7LH', 'alice'), (2, 11, 'U0G9QF9C6', 'bob'), (3, 12, 'U1Q2W3E4R', 'carol');
INSERT INTO ci_pipeline_chat_data (pipeline_id, chat_name_id, response_url) VALUES
  (501, 1, 'https://chat.example.com/respond/501'),
  (502, 2, 'https://chat.example.com/respond/502'),
  (503, 3, 'https://chat.example.com/respond/503');
