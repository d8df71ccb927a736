-- Media is tenant-scoped (issue 27): a tenant's API token reads a stored file only when it came
-- through a number of that tenant. Files are content-addressed and shared by every row whose bytes
-- they are, so a file is a tenant's when some media_objects row naming it carries one of that
-- tenant's numbers. The number is the media.fetch command's phone_number_id, recorded from now on;
-- rows stored before have none (no record says which number they came through) and are read by a
-- global token (or the media token, or a signed link) alone.
ALTER TABLE media_objects ADD COLUMN phone_number_id text;
CREATE INDEX media_objects_stored_name ON media_objects (stored_name);

-- Media reads which tenant a number belongs to, nothing else new.
GRANT SELECT (phone_number_id, tenant) ON numbers TO convoy_media;
