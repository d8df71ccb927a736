#pragma once
// Events a service emits to convoy.events in reaction to a command it consumed: the event
// carries the command's correlation id and conversation key, and the dedupe key
// "<schema>:<command dedupe key>" so a redelivered command emits a duplicate the
// conversation service ignores.
#include <functional>
#include <optional>
#include <string>

#include "convoy/amqp.h"
#include "convoy/json.h"
#include "convoy/log.h"

namespace convoy {

// How a handler emits an event: publish and wait for the broker's confirm.
using EventPublisher = std::function<Status(AmqpMessage)>;

// fields_json: the event's own members, already JSON ("\"wamid\":\"...\",\"size\":3").
AmqpMessage EventFor(const Delivery& command, const std::string& schema,
                     const std::string& fields_json);

// The log context every command handler logs with (the queue, and the delivery's correlation id,
// conversation key and dedupe key).
LogCtx CommandContext(const Delivery& d, const char* queue);
// The schema check every command handler opens with: a body that fails it is dead-lettered with
// the reason (logged as event=invalid_command). The disposition to end with, or nullopt.
std::optional<Disposition> RefuseInvalid(const Delivery& d, const SchemaRegistry& schemas,
                                         const LogCtx& ctx);

}  // namespace convoy
