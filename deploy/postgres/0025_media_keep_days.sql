-- How long media keeps a stored file is the flow's to say (issue 28, item 11): a checklist's
-- photos are evidence a business may need for a year, a listing's are not. keep_days comes with
-- the media.fetch command (the flow's media_retention_days); NULL is media's --retention_days.
-- A file shared by rows of different flows goes with the last row that names it.
ALTER TABLE media_objects ADD COLUMN keep_days integer CHECK (keep_days BETWEEN 1 AND 3650);
