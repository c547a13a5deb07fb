-- Cancelling a run undoes what it made. A step saves what it needs to be undone (previous
-- record owners) here *before* acting, so a crash between acting and recording loses nothing.
ALTER TABLE provisioning_steps ADD COLUMN checkpoint TEXT;
