-- The flows a number runs (issue 27, "the flows it runs"). NULL: every loaded flow, as before. A
-- list: only those start on that number — another flow's trigger words do not fire there, the menu
-- names only these, and a checklist assignment from the number is refused unless the checklist flow
-- is one of them. A conversation already inside a flow keeps going. The number's default_flow, when
-- it names one, is one of them (the API answers 422 before this CHECK is reached).
ALTER TABLE numbers ADD COLUMN flows text[]
  CHECK (flows IS NULL OR (cardinality(flows) BETWEEN 1 AND 32 AND (default_flow IS NULL OR default_flow = ANY (flows))));
