#pragma once
// The conversation state as the JSON stored in conversations.state. Decoding is lenient: a
// member that is missing or of the wrong type takes its default (older rows decode as idle).
#include <rapidjson/document.h>

#include <string>

#include "engine/engine.h"

namespace convoy::conversation {

ConversationState DecodeState(const std::string& json);
std::string EncodeState(const ConversationState& state);
// An assignment run as stored in the state, and as assignment.started carries it.
AssignmentRun DecodeAssignment(const rapidjson::Value& object);

}  // namespace convoy::conversation
