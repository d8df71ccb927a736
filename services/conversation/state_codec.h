#pragma once
// The conversation state as the JSON stored in conversations.state. Decoding is lenient: a
// member that is missing or of the wrong type takes its default (older rows decode as idle).
#include <string>

#include "engine.h"

namespace convoy::conversation {

ConversationState DecodeState(const std::string& json);
std::string EncodeState(const ConversationState& state);

}  // namespace convoy::conversation
