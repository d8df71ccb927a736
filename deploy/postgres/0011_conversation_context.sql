-- conversation: the recent messages of conversations whose flow has an extractor (an AI endpoint),
-- kept within a token budget (--extractor_context_tokens): each row's tokens are estimated as
-- 4 + ceil(characters / 4); the oldest rows go first once a conversation's total is over it.
CREATE TABLE conversation_context (
  seq              bigserial PRIMARY KEY,
  conversation_key text NOT NULL,
  role             text NOT NULL CHECK (role IN ('user', 'assistant')),
  content          text NOT NULL,
  tokens           integer NOT NULL CHECK (tokens > 0),
  at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_context_by_conversation ON conversation_context (conversation_key, seq);
CREATE INDEX conversation_context_at ON conversation_context (at);
