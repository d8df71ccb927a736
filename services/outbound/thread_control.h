#pragma once
// Meta's thread control (Conversation Routing; docs/meta-thread-routing.md): an
// outbound.thread_control command, written by conversation for POST /v1/conversations/{id}/pass and
// /take, becomes one call of POST {graph}/{phone_number_id}/thread_control
//   {"messaging_product": "whatsapp", "to" | "recipient", "action": "pass" | "release" | "take",
//    "metadata", "control_pass": {"target_role": "ai_agent"}}
// and its outcome goes back to the conversation as outbound.thread_controlled.
//
// At most once. The command comes on outbound.send, so it keeps its place among the
// conversation's sends: it waits for the sends written before it, and those written after it wait
// for it. Its row of thread_controls is claimed ('calling') before the call. A Graph error answer
// means Meta moved nothing: a transient one is retried through the delay tiers until `deadline`
// after the first attempt, a permanent one (2494191: take is the escalation partner's; 100) fails
// it. A call with no answer, or a claim found 'calling' from a process that died, is settled
// 'unknown' and never made again: nothing Meta sends back to the caller can tell (the new owner
// gets the handover webhook, not us), and a second pass or take answers an error either way.
// Conversation takes unknown as "no longer convoy's" (it stays silent rather than barge in).
#include <chrono>
#include <string>

#include "convoy/amqp.h"
#include "convoy/events.h"
#include "convoy/graph_numbers.h"
#include "convoy/pg.h"

namespace convoy::outbound {

// The Graph request body for an outbound.thread_control command (schema-valid): `to` when the
// command names the customer's phone, else `recipient` (a BSUID); metadata when given;
// control_pass only with pass and a target_role.
std::string ThreadControlRequest(const std::string& command_json);

struct ThreadControlSettings {
  std::chrono::milliseconds timeout{10000};  // per call (the Graph settings')
  std::chrono::seconds deadline{
      600};  // transient errors are retried this long after the first attempt
};

class ThreadControl {
 public:
  // db and graph: the consumer thread's (as the Sender's).
  ThreadControl(PgConnection& db, GraphNumbers& graph, ThreadControlSettings settings,
                EventPublisher events);
  // An outbound.thread_control command, its schema checked.
  Disposition Handle(const Delivery& d);

 private:
  // The conversation hears what became of the command (outbound.thread_controlled). A failed
  // publish retries the delivery, which finds the row settled and tells it again (the conversation
  // applies it once: its dedupe key is the command's).
  struct Command;  // the command's members (thread_control.cpp)
  Disposition Tell(const Command& c, const Delivery& d, const std::string& outcome, int code,
                   const std::string& reason);
  PgConnection& db_;
  GraphNumbers& graph_;
  ThreadControlSettings settings_;
  EventPublisher events_;
};

}  // namespace convoy::outbound
