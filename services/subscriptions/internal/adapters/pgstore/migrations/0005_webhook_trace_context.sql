-- Whether deliveries to the webhook carry our W3C trace context (traceparent, tracestate).
-- Expand only: a constant default is a catalogue change (no table rewrite), and replicas still
-- running the previous release neither read nor write the column, so their webhooks keep the
-- documented default (off).
ALTER TABLE webhooks ADD COLUMN send_trace_context boolean NOT NULL DEFAULT false;
