#pragma once
// The consumer of flow.completed. A completed run's flow.completed event is the source of truth
// for a result (docs/design.md); its delivery to the business goes through outbound.deliver; this
// queue was published to and read by nothing, so it grew without a bound. Conversation now reads
// it and turns it into the business's own numbers — results by flow and outcome
// (convoy_flow_results_total{tenant,flow,outcome}, the outcome being the complete step the run
// ended in: listings submitted or cancelled, leads qualified or handed to a person, checklists
// submitted) — and acks it. The same queue takes flow.expired (a run its inactivity timeout ended),
// counted in convoy_flow_expired_total{tenant,flow,step}: where people stop. An event that does not
// match its schema is parked with the reason. Its fields and photos (personal data) are neither
// logged nor kept.
#include <functional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/json.h"

namespace convoy::conversation {

// Whether `flow` is one of the loaded flows (step ""), or `step` one of its steps: other names are
// counted as "other", so a label never takes a value from outside the deployment's own flows.
using KnownStep = std::function<bool(const std::string& flow, const std::string& step)>;
DeliveryHandler ResultsFeed(const SchemaRegistry& schemas, KnownStep known);

}  // namespace convoy::conversation
