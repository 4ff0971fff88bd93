-- The W3C trace context (traceparent, tracestate) a request was submitted under, so the worker
-- and the webhook dispatcher, in any process, continue the caller's trace. NULL: none.

ALTER TABLE requests ADD COLUMN trace_context jsonb;
