-- An agent sends a photo uploaded to convoy-media (POST /v1/media) by its stored name (issue 29):
-- the conversation service checks that the file came through the conversation's number (or was
-- uploaded for it), so a tenant never sends another number's file, and the transcript names the
-- photo by its media_objects key as it names a customer's. Those three columns, nothing else.
GRANT SELECT (media_id, stored_name, phone_number_id) ON media_objects TO convoy_conversation;
