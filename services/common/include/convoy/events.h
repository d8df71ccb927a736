#pragma once
// Events a service emits to convoy.events in reaction to a command it consumed: the event
// carries the command's correlation id and conversation key, and the dedupe key
// "<schema>:<command dedupe key>" so a redelivered command emits a duplicate the
// conversation service ignores.
#include <functional>
#include <string>

#include "convoy/amqp.h"

namespace convoy {

// How a handler emits an event: publish and wait for the broker's confirm.
using EventPublisher = std::function<Status(AmqpMessage)>;

// fields_json: the event's own members, already JSON ("\"wamid\":\"...\",\"size\":3").
AmqpMessage EventFor(const Delivery& command, const std::string& schema, const std::string& fields_json);

}  // namespace convoy
