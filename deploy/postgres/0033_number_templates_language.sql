-- A number's templates_language is the language of the templates its flows send (issue 27): today
-- the checklist's opening template outside the 24-hour window. The number's wins over the flow's
-- (flow.v1 assignment.template.language); NULL: the flow's.
--
-- 0017 made the column NOT NULL DEFAULT 'en_US', so a row that took the default cannot be told from
-- one that said en_US. Keeping en_US would send every existing number's templates in en_US, in place
-- of the language they went in until now (the flow's: the shipped checklist's is en), and a template
-- approved only in en would then fail. So every en_US becomes NULL (the flow's language, as before):
-- a number from deploy/numbers/ that says en_US gets it back at the next start (its file is put
-- again); one put over the API that meant en_US must be PUT again with it (the registry shipped one
-- day before this). Other values were said outright and stay.
ALTER TABLE numbers ALTER COLUMN templates_language DROP DEFAULT, ALTER COLUMN templates_language DROP NOT NULL;
UPDATE numbers SET templates_language = NULL WHERE templates_language = 'en_US';
