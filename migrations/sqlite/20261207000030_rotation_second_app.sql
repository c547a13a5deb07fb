-- Rotation by a second app (issue 18): where the org cannot stage credentials (its
-- credentials API is closed, or its API is older than 65.0), a rotation deploys a second
-- External Client App for the same integration user and permission set, and retiring the
-- old secret deletes the old app.

-- The grant's current app when it is a rotation's second app: its API name and consumer key
-- (NULL: the app the grant's names give, as provisioning made it). app_id and consumer_id
-- already name the current app.
ALTER TABLE grants ADD COLUMN app_name TEXT;
ALTER TABLE grants ADD COLUMN app_consumer_key TEXT;

-- How a rotation replaces the pair: 'staged' (staged credentials of the same app) or
-- 'second_app'. For a second app: its name (recorded before its deploy starts, so a teardown
-- during the rotation finds it), its ids once made, and the app it replaces.
ALTER TABLE secret_rotations ADD COLUMN method TEXT NOT NULL DEFAULT 'staged';
ALTER TABLE secret_rotations ADD COLUMN new_app_name TEXT;
ALTER TABLE secret_rotations ADD COLUMN new_app_id TEXT;
ALTER TABLE secret_rotations ADD COLUMN new_consumer_id TEXT;
ALTER TABLE secret_rotations ADD COLUMN old_app_name TEXT;
ALTER TABLE secret_rotations ADD COLUMN old_app_id TEXT;
