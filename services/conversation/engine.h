#pragma once
// The flow engine: a pure function (state, event, now) -> (new state, effects). No broker, no
// database, no clock of its own. This is the walking skeleton's placeholder flow (greet, echo
// receipt, fetch photos); issue 4 replaces it with flows loaded from data.
#include <cstdint>
#include <string>
#include <vector>

namespace convoy::conversation {

struct ConversationState {
  std::string step = "new";
  int64_t messages = 0;  // inbound messages applied
  int64_t photos = 0;    // photos accepted
};

struct Event {
  enum class Kind { kText, kImage, kOther, kMediaStored, kMediaFailed, kSendSucceeded, kSendFailed };
  Kind kind = Kind::kOther;
  std::string text;         // text body or caption
  std::string media_id;     // image
  std::string mime_type;    // image
  std::string sha256;       // image, as Meta sent it
  std::string profile_name;
  int64_t wa_timestamp = 0;
};

struct Effect {
  enum class Kind { kSendText, kFetchMedia };
  Kind kind;
  std::string step;  // names the effect inside its trigger: part of its dedupe key
  std::string text;
  std::string media_id, mime_type, sha256;
};

struct Transition {
  ConversationState state;
  std::vector<Effect> effects;
};

Transition Advance(const ConversationState& state, const Event& event);

}  // namespace convoy::conversation
