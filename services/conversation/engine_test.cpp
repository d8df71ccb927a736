#include "engine.h"

#include <gtest/gtest.h>

namespace convoy::conversation {
namespace {

TEST(Engine, TextRepliesOnceAndCounts) {
  Event e;
  e.kind = Event::Kind::kText;
  e.text = "hello";
  e.profile_name = "Sheena";
  auto t = Advance(ConversationState{}, e);
  EXPECT_EQ(t.state.step, "chatting");
  EXPECT_EQ(t.state.messages, 1);
  ASSERT_EQ(t.effects.size(), 1u);
  EXPECT_EQ(t.effects[0].kind, Effect::Kind::kSendText);
  EXPECT_NE(t.effects[0].text.find("Sheena"), std::string::npos);
  EXPECT_NE(t.effects[0].text.find("hello"), std::string::npos);
}

TEST(Engine, PhotoFetchesAndCounts) {
  ConversationState s;
  s.photos = 2;
  Event e;
  e.kind = Event::Kind::kImage;
  e.media_id = "m1";
  auto t = Advance(s, e);
  EXPECT_EQ(t.state.photos, 3);
  ASSERT_EQ(t.effects.size(), 2u);
  EXPECT_EQ(t.effects[0].kind, Effect::Kind::kFetchMedia);
  EXPECT_EQ(t.effects[0].media_id, "m1");
  EXPECT_NE(t.effects[1].text.find("3 so far"), std::string::npos);
  // Effect steps are distinct within one trigger: they become distinct dedupe keys.
  EXPECT_NE(t.effects[0].step, t.effects[1].step);
}

TEST(Engine, InternalEventsChangeNothingVisible) {
  ConversationState s;
  s.step = "chatting";
  Event e;
  e.kind = Event::Kind::kMediaStored;
  auto t = Advance(s, e);
  EXPECT_TRUE(t.effects.empty());
  EXPECT_EQ(t.state.step, "chatting");
}

}  // namespace
}  // namespace convoy::conversation
