-- The approvers' queue pages newest first by (created_at, id) across states; without this
-- index every page sorts all matching requests.
CREATE INDEX access_requests_created_id ON access_requests (created_at, id);
