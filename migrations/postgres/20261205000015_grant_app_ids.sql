-- The grant's External Client App and its OAuth consumer, as Connect REST knows them:
-- recorded by the consumer step, read by the reveal (before, the reveal read the consumer
-- step's output). Both NULL until the consumer step succeeds, and again once it is undone.
ALTER TABLE grants ADD COLUMN app_id TEXT;
ALTER TABLE grants ADD COLUMN consumer_id TEXT;

-- Grants provisioned before: taken from their consumer step's output.
UPDATE grants SET
    app_id = (SELECT s.output::jsonb ->> 'app_id' FROM provisioning_steps s
              WHERE s.grant_id = grants.id AND s.step = 'consumer' AND s.state = 'succeeded'),
    consumer_id = (SELECT s.output::jsonb ->> 'consumer_id' FROM provisioning_steps s
                   WHERE s.grant_id = grants.id AND s.step = 'consumer' AND s.state = 'succeeded')
WHERE EXISTS (SELECT 1 FROM provisioning_steps s
              WHERE s.grant_id = grants.id AND s.step = 'consumer' AND s.state = 'succeeded'
                AND s.output IS NOT NULL);
