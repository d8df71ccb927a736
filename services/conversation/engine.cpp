#include "engine.h"

namespace convoy::conversation {

Transition Advance(const ConversationState& state, const Event& event) {
  Transition t{state, {}};
  auto greeting = [&] {
    return event.profile_name.empty() ? std::string("Hi!") : "Hi " + event.profile_name + "!";
  };
  switch (event.kind) {
    case Event::Kind::kText:
      t.state.messages++;
      t.state.step = "chatting";
      t.effects.push_back({Effect::Kind::kSendText, "reply",
                           greeting() + " convoy received your message: \"" + event.text + "\"", "", "", ""});
      break;
    case Event::Kind::kImage:
      t.state.messages++;
      t.state.photos++;
      t.state.step = "chatting";
      t.effects.push_back({Effect::Kind::kFetchMedia, "fetch", "", event.media_id, event.mime_type, event.sha256});
      t.effects.push_back({Effect::Kind::kSendText, "reply",
                           greeting() + " Got your photo (" + std::to_string(t.state.photos) + " so far).", "", "",
                           ""});
      break;
    case Event::Kind::kOther:
      t.state.messages++;
      t.effects.push_back({Effect::Kind::kSendText, "reply",
                           "Sorry, convoy can read text and photos only for now.", "", "", ""});
      break;
    case Event::Kind::kMediaStored:
    case Event::Kind::kMediaFailed:
    case Event::Kind::kSendSucceeded:
    case Event::Kind::kSendFailed:
      break;  // recorded in the audit; the placeholder flow does not react
  }
  return t;
}

}  // namespace convoy::conversation
