// Unit: the flow engine as a pure function over the shipped listing flow, the flow loader's
// checks, validation and extraction rules, and the state codec. No broker, no database.
#include "engine/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "engine/state_codec.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

constexpr int64_t kT0 = 1750000000;

const SchemaRegistry& Schemas() { return test::ShippedSchemas(); }

const FlowSet& Shipped() {
  static const FlowSet flows = [] {
    auto set = FlowSet::LoadDir(test::SourcePath("deploy/flows"), Schemas());
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    return set.ok() ? std::move(*set) : FlowSet();
  }();
  return flows;
}

Event Text(const std::string& body, int64_t at) {
  Event e;
  e.kind = Event::Kind::kText;
  e.text = body;
  e.wa_timestamp = at;
  return e;
}

// Media of Meta's message type (image, document, video, audio), as the processor makes it.
Event Media(const std::string& type, const std::string& media_id, const std::string& mime,
            int64_t at) {
  Event e;
  e.kind = Event::Kind::kMedia;
  e.message_type = type;
  e.media_id = media_id;
  e.mime_type = mime;
  e.wa_timestamp = at;
  return e;
}

Event Image(const std::string& media_id, int64_t at) {
  return Media("image", media_id, "image/jpeg", at);
}

Event Tap(const std::string& id, const std::string& title, int64_t at) {
  Event e;
  e.kind = Event::Kind::kButton;
  e.button_id = id;
  e.text = title;
  e.wa_timestamp = at;
  return e;
}

// A conversation driven one event at a time; keeps every transition's effects.
struct Chat {
  explicit Chat(EngineSettings settings = {}) : engine(Shipped(), settings) {}
  Transition Send(const Event& e, int64_t now = kT0 + 100000) {
    Transition t = engine.Advance(state, e, now);
    state = t.state;
    return t;
  }
  // SELL, email, a description with every field: the conversation waits for photos.
  void ToPhotos(int64_t at = kT0) {
    Send(Text("SELL", at));
    Send(Text("kerry@example.com", at + 1));
    Send(Text("Nike running shoes, size 42, used, $35", at + 2));
    ASSERT_EQ(state.step, "photos");
  }
  size_t Photos() const {
    auto it = state.photos.find("photos");
    return it == state.photos.end() ? 0 : it->second.size();
  }
  Engine engine;
  ConversationState state;
};

std::vector<std::string> Replies(const Transition& t) {
  std::vector<std::string> out;
  for (const auto& e : t.effects) {
    if (e.kind == Effect::Kind::kSendText || e.kind == Effect::Kind::kSendButtons)
      out.push_back(e.text);
  }
  return out;
}

size_t Count(const Transition& t, Effect::Kind kind) {
  size_t n = 0;
  for (const auto& e : t.effects) n += e.kind == kind;
  return n;
}

TEST(Engine, UnknownTextGetsTheMenuQuotingIt) {
  Chat c;
  Event e = Text("Does it come in another color?", kT0);
  e.profile_name = "Sheena";
  auto t = c.Send(e);
  ASSERT_EQ(Replies(t).size(), 1u);
  EXPECT_EQ(Replies(t)[0],
            "Hi Sheena! I can't help with \"Does it come in another color?\" yet. Send SELL to "
            "list an item for sale.");
  EXPECT_TRUE(c.state.flow.empty());
  EXPECT_EQ(c.state.messages, 1);
}

// Only the `messages` field is the flow's: SELL seen on standby, echoed from the WhatsApp Business
// app or backfilled, and a change of the thread's owner, leave the state as it was (the 24-hour
// window and the message count included), send nothing and say why in the note. Mid-flow too.
TEST(Engine, OnlyTheMessagesChannelStartsOrAdvancesAFlow) {
  Chat c;
  for (auto [channel, note] : {std::pair{Event::Channel::kStandby, "standby"},
                               {Event::Channel::kEcho, "echo"},
                               {Event::Channel::kHistory, "history"}}) {
    Event e = Text("SELL", kT0);
    e.channel = channel;
    auto t = c.Send(e);
    EXPECT_TRUE(t.effects.empty()) << note;
    EXPECT_EQ(t.note, note);
    EXPECT_EQ(EncodeState(t.state), EncodeState(ConversationState{})) << note;
  }
  c.Send(Text("SELL", kT0 + 1));
  ASSERT_EQ(c.state.step, "email");
  const std::string before = EncodeState(c.state);
  for (const char* action : {"control_taken", "control_passed"}) {
    Event h;
    h.kind = Event::Kind::kHandover;
    h.handover_action = action;
    auto t = c.Send(h);
    EXPECT_TRUE(t.effects.empty()) << action;
    EXPECT_EQ(t.note, action);
    EXPECT_EQ(EncodeState(t.state), before) << action;
  }
  Event echo = Text("kerry@example.com", kT0 + 2);
  echo.channel = Event::Channel::kEcho;
  echo.outgoing = true;
  EXPECT_TRUE(c.Send(echo).effects.empty());
  EXPECT_EQ(c.state.step, "email") << "the business's own words answer no question of the flow";
}

TEST(Engine, TriggerIsCaseAndSpaceInsensitiveAndAsksForTheEmail) {
  Chat c;
  auto t = c.Send(Text("  sell ", kT0));
  EXPECT_EQ(c.state.flow, "listing");
  EXPECT_EQ(c.state.step, "email");
  EXPECT_EQ(t.note, "started");
  ASSERT_EQ(Replies(t).size(), 1u);
  EXPECT_NE(Replies(t)[0].find("email"), std::string::npos);
}

TEST(Engine, EmailIsValidatedBeforeMovingOn) {
  Chat c;
  c.Send(Text("SELL", kT0));
  auto bad = c.Send(Text("kerry at example", kT0 + 1));
  EXPECT_EQ(c.state.step, "email");
  EXPECT_NE(Replies(bad)[0].find("doesn't look like an email"), std::string::npos);
  c.Send(Text("Kerry@Example.COM", kT0 + 2));
  EXPECT_EQ(c.state.step, "description");
  EXPECT_EQ(c.state.fields["email"], "Kerry@example.com");
}

TEST(Engine, DescriptionFieldsAreExtractedAndMissingOnesAskedOneAtATime) {
  Chat c;
  c.Send(Text("SELL", kT0));
  c.Send(Text("kerry@example.com", kT0 + 1));
  auto t = c.Send(Text("Blue denim jacket from Levi's, barely worn", kT0 + 2));
  EXPECT_EQ(c.state.fields["brand"], "Levi's");
  EXPECT_EQ(c.state.fields["condition"], "used");
  EXPECT_EQ(c.state.asking, "price");
  EXPECT_EQ(Replies(t), std::vector<std::string>{"What price are you asking?"});
  t = c.Send(Text("about twenty", kT0 + 3));
  EXPECT_EQ(c.state.asking, "price");
  EXPECT_NE(Replies(t)[0].find("as a number"), std::string::npos);
  t = c.Send(Text("$25,5", kT0 + 4));
  EXPECT_EQ(c.state.fields["price"], "25.50");
  EXPECT_EQ(c.state.asking, "size");
  t = c.Send(Text("M", kT0 + 5));
  EXPECT_EQ(c.state.fields["size"], "M");
  EXPECT_EQ(c.state.step, "photos");
  EXPECT_NE(Replies(t)[0].find("send photos"), std::string::npos);
}

TEST(Engine, ADescriptionWithEverythingGoesStraightToPhotos) {
  Chat c;
  c.ToPhotos();
  EXPECT_EQ(c.state.fields["brand"], "Nike");
  EXPECT_EQ(c.state.fields["size"], "42");
  EXPECT_EQ(c.state.fields["condition"], "used");
  EXPECT_EQ(c.state.fields["price"], "35");
  EXPECT_EQ(c.state.fields["description"], "Nike running shoes, size 42, used, $35");
}

// The photo-burst checklist, as the engine sees it (the processor tests repeat it over a
// real database and concurrent consumers).
TEST(Engine, FirstPhotoIsAcknowledgedOnceAndEveryPhotoIsFetched) {
  Chat c;
  c.ToPhotos();
  auto first = c.Send(Image("m1", kT0 + 10));
  EXPECT_EQ(Replies(first),
            std::vector<std::string>{"Got it! 📸\n\nKeep sending. Text DONE when finished."});
  EXPECT_EQ(Count(first, Effect::Kind::kFetchMedia), 1u);
  for (const auto& e : first.effects)
    EXPECT_EQ(e.keep_days, 0) << "a listing's photos: media's own days";
  for (const char* id : {"m2", "m3"}) {
    auto t = c.Send(Image(id, kT0 + 11));
    EXPECT_TRUE(Replies(t).empty());
    EXPECT_EQ(Count(t, Effect::Kind::kFetchMedia), 1u);
  }
  auto done = c.Send(Text("done", kT0 + 12));
  EXPECT_EQ(c.state.step, "flaws");
  ASSERT_EQ(done.effects.size(), 1u);
  EXPECT_EQ(done.effects[0].kind, Effect::Kind::kSendButtons);
  EXPECT_EQ(done.effects[0].text, "Great! Got 3 photos 📸\n\nAny flaws or special notes?");
  ASSERT_EQ(done.effects[0].buttons.size(), 2u);
  EXPECT_EQ(done.effects[0].buttons[0].second, "NO, SKIP");
  EXPECT_EQ(done.effects[0].buttons[1].second, "YES, ADD");
}

// Media that is not a photo in a photo step gets the flow's "I need photos" answer, counts for
// nothing, fetches nothing; a location (not media) gets the step's usual prompt.
TEST(Engine, AVideoOrAFileInAPhotoStepIsAskedToBeAPicture) {
  Chat c;
  c.ToPhotos();
  for (const char* type : {"video", "document", "sticker", "audio"}) {
    // The listing's photo step takes photos only: a document, a video or a voice note with its
    // media id is refused all the same (a sticker comes as kOther).
    Event e = std::string(type) == "sticker"
                  ? Event()
                  : Media(type, std::string("m-") + type, "application/pdf", 0);
    if (std::string(type) == "sticker") e.kind = Event::Kind::kOther;
    e.message_type = type;
    e.wa_timestamp = kT0 + 10;
    auto t = c.Send(e);
    EXPECT_EQ(Replies(t),
              std::vector<std::string>{
                  "I need photos — please send a picture of the item (not a video or "
                  "a file), or text DONE when finished."})
        << type;
    EXPECT_EQ(Count(t, Effect::Kind::kFetchMedia), 0u);
    EXPECT_EQ(t.note, "not_a_photo");
  }
  Event where;
  where.kind = Event::Kind::kOther;
  where.message_type = "location";
  where.wa_timestamp = kT0 + 11;
  EXPECT_EQ(Replies(c.Send(where)),
            std::vector<std::string>{"Send photos or text DONE when finished! 📸"});
  EXPECT_EQ(c.Photos(), 0u);
}

TEST(Engine, SamePhotoTwiceCountsOnce) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("same", kT0 + 10));
  auto again = c.Send(Image("same", kT0 + 11));
  EXPECT_TRUE(again.effects.empty());
  EXPECT_EQ(again.note, "duplicate_photo");
  c.Send(Text("DONE", kT0 + 12));
  EXPECT_EQ(c.Photos(), 1u);
}

TEST(Engine, SinglePhotoAndFivePhotos) {
  for (int n : {1, 5}) {
    Chat c;
    c.ToPhotos();
    for (int i = 0; i < n; ++i) c.Send(Image("p" + std::to_string(i), kT0 + 10 + i));
    auto done = c.Send(Text("DONE", kT0 + 20));
    EXPECT_EQ(Replies(done)[0], "Great! Got " + std::to_string(n) +
                                    (n == 1 ? " photo" : " photos") +
                                    " 📸\n\nAny flaws or special notes?");
  }
}

TEST(Engine, TenMinuteGapKeepsEarlierPhotos) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  auto later = c.Send(Image("c", kT0 + 11 + 600));
  EXPECT_TRUE(Replies(later).empty()) << "the first-photo acknowledgement is not repeated";
  auto done = c.Send(Text("DONE", kT0 + 11 + 601));
  EXPECT_EQ(Replies(done)[0], "Great! Got 3 photos 📸\n\nAny flaws or special notes?");
}

TEST(Engine, PhotosOlderThanTheTtlExpireAndTheUserIsAskedAgain) {
  Chat c(EngineSettings{3600, 100, 600, ""});
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  auto done = c.Send(Text("DONE", kT0 + 11 + 3601));
  EXPECT_EQ(c.state.step, "photos");
  EXPECT_EQ(c.Photos(), 0u);
  ASSERT_EQ(Replies(done).size(), 1u);
  EXPECT_EQ(Replies(done)[0].rfind("Got 0 photos", 0), 0u) << Replies(done)[0];
  // Sending again starts a fresh burst, acknowledged again.
  auto again = c.Send(Image("c", kT0 + 4000));
  EXPECT_EQ(Replies(again),
            std::vector<std::string>{"Got it! 📸\n\nKeep sending. Text DONE when finished."});
  c.Send(Text("DONE", kT0 + 4001));
  EXPECT_EQ(c.state.step, "flaws");
  EXPECT_EQ(c.Photos(), 1u);
}

// Some photos expired, some left: never silently fewer. The person hears it at the next photo or
// at DONE, and the count DONE shows is the count that will be submitted.
TEST(Engine, PhotosThatPartlyExpireAreToldAndTheCountShownIsTheCountSubmitted) {
  Chat c(EngineSettings{3600, 100, 600, ""});
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 3000));
  auto done = c.Send(Text("DONE", kT0 + 10 + 3601));
  ASSERT_EQ(Replies(done).size(), 2u);
  EXPECT_EQ(Replies(done)[0],
            "I only have 1 of your photos: 1 sent earlier expired after an hour. Send it again if "
            "you want it included.");
  EXPECT_EQ(Replies(done)[1].rfind("Great! Got 1 photo 📸", 0), 0u) << Replies(done)[1];
  EXPECT_EQ(done.note, "done_some_expired");
  EXPECT_EQ(c.Photos(), 1u);
  // At the next photo: told once, with the count kept, and the new photo counts.
  Chat d(EngineSettings{3600, 100, 600, ""});
  d.ToPhotos();
  d.Send(Image("a", kT0 + 10));
  d.Send(Image("b", kT0 + 11));
  d.Send(Image("c", kT0 + 3000));
  auto next = d.Send(Image("e", kT0 + 3700));
  EXPECT_EQ(Replies(next), std::vector<std::string>{
                               "I only have 1 of your photos: 2 sent earlier expired after an "
                               "hour. Send them again if you want them included."});
  EXPECT_EQ(d.Photos(), 2u);
  EXPECT_TRUE(Replies(d.Send(Image("f", kT0 + 3701))).empty()) << "said once";
  EXPECT_EQ(Replies(d.Send(Text("DONE", kT0 + 3702)))[0].rfind("Great! Got 3 photos 📸", 0), 0u);
}

TEST(Engine, DoneWithoutPhotosAsksForOne) {
  Chat c;
  c.ToPhotos();
  auto t = c.Send(Text("DONE", kT0 + 10));
  EXPECT_EQ(c.state.step, "photos");
  EXPECT_NE(Replies(t)[0].find("haven't got any photos"), std::string::npos);
}

TEST(Engine, LatePhotoSentBeforeDoneIsCountedAndTheUserGetsTheCorrectedCount) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  c.Send(Text("DONE", kT0 + 13));
  // Sent at +12, delivered after DONE (+13) was processed.
  auto late = c.Send(Image("c", kT0 + 12));
  EXPECT_EQ(late.note, "late_photo");
  EXPECT_EQ(c.state.step, "flaws") << "the conversation stays where it is";
  EXPECT_EQ(c.Photos(), 3u);
  EXPECT_EQ(Count(late, Effect::Kind::kFetchMedia), 1u);
  EXPECT_EQ(Replies(late),
            std::vector<std::string>{"Update: one more photo arrived, got 3 photos in total."});
  // A photo sent in the same second as DONE counts too.
  c.Send(Image("d", kT0 + 13));
  EXPECT_EQ(c.Photos(), 4u);
  // The same late photo again adds nothing.
  EXPECT_TRUE(c.Send(Image("c", kT0 + 12)).effects.empty());
  // A photo sent after DONE is not a late one: the question is asked again.
  auto after = c.Send(Image("e", kT0 + 20));
  EXPECT_EQ(c.Photos(), 4u);
  EXPECT_EQ(after.note, "reprompted");
  auto tap = c.Send(Tap("flaws_no", "NO, SKIP", kT0 + 21));
  EXPECT_EQ(c.state.step, "summary");
  EXPECT_NE(Replies(tap)[0].find("Photos: 4"), std::string::npos) << Replies(tap)[0];
}

TEST(Engine, LateAnswerToASettledQuestionChangesNothing) {
  Chat c;
  c.Send(Text("SELL", kT0));
  c.Send(Text("second@example.com", kT0 + 5));
  ASSERT_EQ(c.state.step, "description");
  auto late = c.Send(Text("first@example.com", kT0 + 4));
  EXPECT_EQ(late.note, "superseded");
  EXPECT_TRUE(late.effects.empty());
  EXPECT_EQ(c.state.fields["email"], "second@example.com");
  EXPECT_EQ(c.state.step, "description");
}

TEST(Engine, ButtonsByTapOrTypedKeywordAndAWrongAnswerResendsThem) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Text("DONE", kT0 + 11));
  auto wrong = c.Send(Text("maybe", kT0 + 12));
  ASSERT_EQ(wrong.effects.size(), 1u);
  EXPECT_EQ(wrong.effects[0].kind, Effect::Kind::kSendButtons);
  EXPECT_EQ(wrong.effects[0].text, "Please tap NO, SKIP or YES, ADD.");
  c.Send(Text("yes", kT0 + 13));
  EXPECT_EQ(c.state.step, "details");
  c.Send(Text("Small scuff on the left toe", kT0 + 14));
  EXPECT_EQ(c.state.step, "summary");
  EXPECT_EQ(c.state.fields["notes"], "Small scuff on the left toe");
}

TEST(Engine, SubmitDeliversTheListingWithItsPhotosAndEndsTheRun) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  Event stored;
  stored.kind = Event::Kind::kMediaStored;
  stored.media_id = "a";
  stored.stored_name = std::string(64, 'a') + ".jpg";
  EXPECT_EQ(c.Send(stored).note, "media_stored");
  c.Send(Text("DONE", kT0 + 12));
  auto summary = c.Send(Tap("flaws_no", "NO, SKIP", kT0 + 13));
  ASSERT_EQ(summary.effects.size(), 1u);
  EXPECT_EQ(summary.effects[0].text,
            "Here is your listing:\nDescription: Nike running shoes, size 42, used, $35\nBrand: "
            "Nike\nSize: 42\n"
            "Condition: used\nPrice: 35\nPhotos: 2\nEmail: kerry@example.com\nSubmit it?");
  auto submit = c.Send(Text("submit", kT0 + 14));
  ASSERT_EQ(Count(submit, Effect::Kind::kFlowCompleted), 1u);
  const Effect* done = nullptr;
  for (const auto& e : submit.effects) {
    if (e.kind == Effect::Kind::kFlowCompleted) done = &e;
  }
  EXPECT_EQ(done->flow, "listing");
  EXPECT_EQ(done->outcome, "submitted");
  EXPECT_EQ(done->fields.at("price"), "35");
  ASSERT_EQ(done->photos.at("photos").size(), 2u);
  EXPECT_EQ(done->photos.at("photos")[0].stored_name, std::string(64, 'a') + ".jpg");
  // The stored photo is uploaded to the flow's destination; the one still being fetched is not.
  ASSERT_EQ(Count(submit, Effect::Kind::kUploadMedia), 1u);
  for (const auto& e : submit.effects) {
    if (e.kind != Effect::Kind::kUploadMedia) continue;
    EXPECT_EQ(e.stored_name, std::string(64, 'a') + ".jpg");
    EXPECT_EQ(e.destination, "listing");
    EXPECT_EQ(e.step, "upload:photos:0");
  }
  // Photo "b" was still being fetched: it is uploaded when it is stored, after the run ended.
  EXPECT_EQ(c.state.pending_uploads, (std::map<std::string, std::string>{{"b", "listing"}}));
  Event late;
  late.kind = Event::Kind::kMediaStored;
  late.media_id = "b";
  late.stored_name = std::string(64, 'b') + ".jpg";
  // The result waits for it too: not delivered yet, a reminder set for when the wait is over.
  ASSERT_EQ(Count(submit, Effect::Kind::kDeliver), 0u);
  ASSERT_EQ(Count(submit, Effect::Kind::kResultDue), 1u);
  ASSERT_EQ(c.state.results.size(), 1u);
  EXPECT_EQ(c.state.results[0].sink, "listing");
  EXPECT_EQ(c.state.results[0].type, "listing.submitted");
  EXPECT_EQ(c.state.results[0].due_at, kT0 + 14 + 600);
  auto after = c.Send(late);
  EXPECT_EQ(after.note, "result_ready");
  ASSERT_EQ(after.effects.size(), 2u);
  ASSERT_EQ(Count(after, Effect::Kind::kDeliver), 1u);
  const Effect& deliver = after.effects[0];
  EXPECT_EQ(deliver.result.photos.at("photos")[1].stored_name, std::string(64, 'b') + ".jpg");
  EXPECT_EQ(deliver.result.fields.at("price"), "35");
  EXPECT_EQ(after.effects[1].kind, Effect::Kind::kUploadMedia);
  EXPECT_EQ(after.effects[1].stored_name, std::string(64, 'b') + ".jpg");
  EXPECT_EQ(after.effects[1].destination, "listing");
  EXPECT_TRUE(c.state.pending_uploads.empty());
  EXPECT_TRUE(c.state.results.empty());
  EXPECT_TRUE(c.Send(late).effects.empty())
      << "a duplicate media.stored uploads and delivers nothing more";
  EXPECT_NE(Replies(submit)[0].find("Submitted! Your listing with 2 photos"), std::string::npos);
  EXPECT_TRUE(c.state.flow.empty());
  EXPECT_TRUE(c.state.fields.empty());
  // A new run starts clean.
  c.Send(Text("SELL", kT0 + 20));
  EXPECT_EQ(c.state.step, "email");
  EXPECT_EQ(c.Photos(), 0u);
}

// Internal events (an upload done, a send accepted) are audited, never answered as if the user
// had written: after SUBMIT the uploads' events must not draw a menu reply.
TEST(Engine, InternalEventsAreRecordedWithoutAReply) {
  Chat c;
  for (auto kind :
       {Event::Kind::kRecorded, Event::Kind::kSendSucceeded, Event::Kind::kSendFailed}) {
    Event e;
    e.kind = kind;
    auto t = c.Send(e);
    EXPECT_TRUE(t.effects.empty()) << static_cast<int>(kind);
    EXPECT_EQ(t.note, "recorded");
  }
  c.ToPhotos();
  Event uploaded;
  uploaded.kind = Event::Kind::kRecorded;
  auto t = c.Send(uploaded);
  EXPECT_TRUE(t.effects.empty());
  EXPECT_EQ(c.state.step, "photos");
}

TEST(Engine, CancelEndsTheRunWithoutDelivering) {
  Chat c;
  c.ToPhotos();
  auto t = c.Send(Text("cancel", kT0 + 10));
  EXPECT_EQ(Count(t, Effect::Kind::kFlowCompleted), 0u);
  EXPECT_EQ(Replies(t), std::vector<std::string>{"Listing cancelled. Send SELL to start again."});
  EXPECT_TRUE(c.state.flow.empty());
}

TEST(Engine, AFailedPhotoNoLongerCountsAndTheUserIsAskedToResendIt) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  Event failed;
  failed.kind = Event::Kind::kMediaFailed;
  failed.media_id = "b";
  failed.reason = "sha256 mismatch";
  auto t = c.Send(failed);
  EXPECT_EQ(c.Photos(), 1u);
  EXPECT_EQ(Replies(t),
            std::vector<std::string>{"That photo didn't come through. Please send it again."})
      << "the technical reason is never shown";
  EXPECT_EQ(t.note, "media_failed");
  EXPECT_EQ(c.state.messages, 5) << "internal events are not inbound messages";
}

// Each failure class in plain words, never the technical reason; "send it again" only while the
// step still takes photos (after DONE, the photo is gone from the count and nobody asks for it).
TEST(Engine, AFailedPhotoIsExplainedByItsClassAndResentOnlyWhereTheStepTakesPhotos) {
  Chat c;
  c.ToPhotos();
  const std::string ids[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; ++i) c.Send(Image(ids[i], kT0 + 10 + i));
  auto fail = [&](const std::string& id, const std::string& code, const std::string& reason) {
    Event failed;
    failed.kind = Event::Kind::kMediaFailed;
    failed.media_id = id;
    failed.code = code;
    failed.reason = reason;
    auto t = c.Send(failed);
    EXPECT_EQ(t.note, "media_failed");
    auto replies = Replies(t);
    EXPECT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies.empty() ? std::string::npos : replies[0].find(reason), std::string::npos)
        << "the technical reason leaked";
    return replies.empty() ? std::string() : replies[0];
  };
  EXPECT_EQ(fail("a", "too_large", "image of 9000000 bytes over the limit of 5242880"),
            "That photo was too large for us to save. Please send it again.");
  EXPECT_EQ(fail("b", "not_a_photo", "content does not look like image/jpeg"),
            "That file didn't look like a photo, so we couldn't save it. Please send it again.");
  EXPECT_EQ(fail("c", "expired", "media metadata: HTTP 404 (unknown or expired media id)"),
            "That photo was no longer available from WhatsApp by the time we fetched it. Please "
            "send it again.");
  EXPECT_EQ(fail("d", "damaged", "sha256 mismatch"),
            "That photo didn't come through. Please send it again.");
  // Past the photos step: told, not asked to send it again.
  c.Send(Text("DONE", kT0 + 30));
  ASSERT_NE(c.state.step, "photos");
  EXPECT_EQ(fail("e", "damaged", "sha256 mismatch"), "That photo didn't come through.");
}

TEST(Engine, APhotoRefusedOverQuotaIsExplainedInPlainWords) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  Event refused;
  refused.kind = Event::Kind::kMediaFailed;
  refused.media_id = "b";
  refused.code = "over_quota";
  refused.reason = "over quota: user_bytes (today 3 photos, 268000000 bytes; limit 268435456)";
  auto t = c.Send(refused);
  EXPECT_EQ(c.Photos(), 1u) << "a refused photo does not count";
  EXPECT_EQ(Replies(t),
            std::vector<std::string>{
                "You've sent the most photos we can take today. Please try again tomorrow."});
  EXPECT_EQ(t.note, "media_over_quota");
}

// --max_photos_per_run counts the photos of every step of the run: past it a photo is neither
// kept nor fetched, and the user is told.
TEST(Engine, APhotoPastTheRunsLimitIsNotFetchedAndTheUserIsTold) {
  EngineSettings settings;
  settings.max_photos_per_run = 2;
  Chat c(settings);
  c.ToPhotos();
  EXPECT_EQ(Count(c.Send(Image("a", kT0 + 10)), Effect::Kind::kFetchMedia), 1u);
  EXPECT_EQ(Count(c.Send(Image("b", kT0 + 11)), Effect::Kind::kFetchMedia), 1u);
  auto t = c.Send(Image("c", kT0 + 12));
  EXPECT_EQ(Count(t, Effect::Kind::kFetchMedia), 0u);
  EXPECT_EQ(Replies(t), std::vector<std::string>{
                            "That's the most photos we can take this time (2), so this one "
                            "wasn't saved."});
  EXPECT_EQ(t.note, "run_photo_limit");
  EXPECT_EQ(c.Photos(), 2u);
  EXPECT_EQ(c.Send(Image("b", kT0 + 13)).note, "duplicate_photo")
      << "a photo already kept is still a duplicate";
  c.Send(Text("DONE", kT0 + 14));
  EXPECT_EQ(c.state.step, "flaws");
}

TEST(Engine, APhotoOutsideAFlowGetsTheMenuAndIsNotFetched) {
  Chat c;
  auto t = c.Send(Image("x", kT0));
  EXPECT_EQ(Count(t, Effect::Kind::kFetchMedia), 0u);
  EXPECT_EQ(Replies(t), std::vector<std::string>{"Hi! Send SELL to list an item for sale."});
}

TEST(Engine, QuotedTextIsClippedAtACharacterBoundary) {
  Chat c;
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "\xc3\xa9";  // é, two bytes each
  auto t = c.Send(Text(long_text, kT0));
  const std::string reply = Replies(t)[0];
  auto open = reply.find('"'), close = reply.find("...\"");
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ((close - open - 1) % 2, 0u) << "cut inside a character";
}

TEST(Engine, ARunWhoseFlowIsNoLongerConfiguredFallsBackToTheMenu) {
  Chat c;
  c.state.flow = "retired";
  c.state.step = "somewhere";
  auto t = c.Send(Text("hello", kT0));
  EXPECT_TRUE(c.state.flow.empty());
  EXPECT_EQ(Replies(t).size(), 1u);
}

TEST(Validation, EmailsAndPrices) {
  std::string v;
  for (const char* ok : {"a@b.co", "first.last+tag@sub.example.org"})
    EXPECT_TRUE(Validate(Validation::kEmail, ok, &v)) << ok;
  for (const char* bad : {"", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b..co", "a@b.c"})
    EXPECT_FALSE(Validate(Validation::kEmail, bad, &v)) << bad;
  struct Case {
    const char* in;
    const char* out;
  };
  for (auto c :
       {Case{"25", "25"}, Case{"$25.5", "25.50"}, Case{"25,99 EUR", "25.99"}, Case{"007", "7"},
        Case{"\xe2\x82\xac"
             "12",
             "12"}}) {
    EXPECT_TRUE(Validate(Validation::kPrice, c.in, &v)) << c.in;
    EXPECT_EQ(v, c.out);
  }
  for (const char* bad : {"", "free", "25.999", "12345678", "about 20", "20 apples"})
    EXPECT_FALSE(Validate(Validation::kPrice, bad, &v)) << bad;
}

TEST(Extraction, RulesFindValuesOnWordBoundariesAndSurviveLongInput) {
  const Flow* f = Shipped().Find("listing");
  ASSERT_NE(f, nullptr);
  const Step* d = f->Find("description");
  auto rule = [&](const std::string& field) {
    for (const auto& r : d->extract) {
      if (r.field == field) return r;
    }
    return ExtractRule{};
  };
  EXPECT_EQ(rule("condition").Find("Goodness, what a bag"), "");
  EXPECT_EQ(rule("condition").Find("Like new, hardly used"), "like new");
  EXPECT_EQ(rule("price").Find("asking 40 dollars"), "40");
  EXPECT_EQ(rule("price").Find("Price: 12.5"), "12.50");
  EXPECT_EQ(rule("size").Find("women's jacket size: L"), "L");
  EXPECT_EQ(rule("brand").Find("Brand: Acme Tools, red"), "Acme Tools");
  std::string huge(20000, 'x');
  huge += " $5";
  EXPECT_EQ(rule("price").Find(huge), "") << "only WhatsApp's 4096 characters are read";
}

// The name pattern's stop words end a name where a sentence goes on ("and", "i'm", ...), and a
// "name" that would begin with one is no name.
TEST(ExtractRules, AValueEndsBeforeItsFirstStopWord) {
  const Flow* lead = Shipped().Find("lead");
  ASSERT_NE(lead, nullptr);
  const ExtractRule* name = nullptr;
  for (const auto& step : lead->steps) {
    if (step.id == "name") name = &step.own;
  }
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->Find("my name is John and I need a visa"), "John");
  EXPECT_EQ(name->Find("Hello, my name is Omar Khan I'm from Pakistan"), "Omar Khan");
  EXPECT_EQ(name->Find("my name is Ana Maria Lopez Garcia Perez"), "Ana Maria Lopez Garcia");
  EXPECT_EQ(name->Find("my name is Ian"), "Ian") << "a name that begins like a stop word is a name";
  EXPECT_EQ(name->Find("my name is i'm not telling"), "");
  size_t begin = 0, end = 0;
  const std::string text = "my name is John and I need a visa";
  EXPECT_EQ(name->Find(text, &begin, &end), "John");
  EXPECT_EQ(text.substr(begin, end - begin), "my name is John")
      << "the rest of the answer stays for other fields";
}

// Every pattern of every shipped flow, over texts made to make a backtracking engine crawl: the
// search is linear (RE2). Measured as a ratio in the same run, not against a clock bound (the
// machine is shared): each search's best of 5 at 4,096 characters against the same at 1,024, summed
// over every pattern and text. Linear is 4x; a quadratic engine is 16x.
TEST(ExtractRules, EveryShippedPatternIsLinearOnAdversarialTexts) {
  auto texts = [](size_t n) {
    auto repeat = [n](const std::string& head, const std::string& unit, const std::string& tail) {
      std::string s = head;
      while (s.size() + unit.size() + tail.size() <= n) s += unit;
      return s + tail;
    };
    return std::vector<std::string>{repeat("", "a", ""), repeat("brand: ", "a", ""),
                                    repeat("my name is ", "a ", ""), repeat("", "1.1 ", "$"),
                                    std::string(n / 2, '(') + std::string(n / 2, ' ')};
  };
  const auto small = texts(1024), large = texts(4096);
  auto best_of_5 = [](const ExtractRule& rule, const std::string& text) {
    double best = 1e9;
    for (int i = 0; i < 5; ++i) {
      auto started = std::chrono::steady_clock::now();
      rule.Find(text);
      best = std::min(best, std::chrono::duration<double, std::milli>(
                                std::chrono::steady_clock::now() - started)
                                .count());
    }
    return best;
  };
  double small_ms = 0, large_ms = 0;
  size_t searched = 0;
  for (const std::string name : {"listing", "lead", "checklist"}) {
    const Flow* flow = Shipped().Find(name);
    ASSERT_NE(flow, nullptr) << name;
    for (const auto& step : flow->steps) {
      std::vector<const ExtractRule*> rules = {&step.own};
      for (const auto& r : step.extract) rules.push_back(&r);
      for (const ExtractRule* rule : rules) {
        if (rule->patterns.empty()) continue;
        for (size_t t = 0; t < small.size(); ++t) {
          small_ms += best_of_5(*rule, small[t]);
          large_ms += best_of_5(*rule, large[t]);
          ++searched;
        }
      }
    }
  }
  std::cout << searched << " adversarial searches: " << small_ms << " ms at 1,024 characters, "
            << large_ms << " ms at 4,096 (" << large_ms / small_ms
            << "x; linear 4x, quadratic 16x)\n";
  EXPECT_GT(searched, 20u);
  EXPECT_LT(large_ms, 8 * small_ms) << "a search grows faster than the text";
}

TEST(FlowLoader, TheShippedFlowsLoad) {
  EXPECT_EQ(Shipped().size(), 3u);
  EXPECT_NE(Shipped().ForTrigger("sell"), nullptr);
  EXPECT_EQ(Shipped().ForTrigger("sell it"), nullptr);
  ASSERT_NE(Shipped().Find("checklist"), nullptr);
  EXPECT_TRUE(Shipped().Find("checklist")->assigned);
  EXPECT_EQ(Shipped().Menu(), "Send SELL to list an item for sale.")
      << "an assigned flow is not offered";
}

std::string Minimal(const std::string& steps, const std::string& extra = "") {
  return R"({"schema":"flow","version":1,"name":"t","description":"test","triggers":["GO"],"start":"a",)" +
         extra + R"("steps":)" + steps + "}";
}

TEST(FlowLoader, BadFlowsAreRefusedNamingTheFileAndWhere) {
  struct Case {
    std::string json, expect;
  };
  // A checklist ends by its assignment's TTL, not by an inactivity timeout.
  std::string checklist = test::ReadFile(test::SourcePath("deploy/flows/checklist.json"));
  const std::string name = R"("name": "checklist",)";
  ASSERT_NE(checklist.find(name), std::string::npos);
  checklist.replace(checklist.find(name), name.size(),
                    name + R"( "inactivity_timeout_seconds": 3600,)");
  const std::string complete = R"([{"id":"a","kind":"complete","prompt":"p"}])";
  const std::vector<Case> cases = {
      {"{", "malformed JSON"},
      {Minimal(complete, R"("inactivity_timeout_seconds":59,)"), "minimum"},
      {Minimal(complete, R"("inactivity_timeout_seconds":2592001,)"), "maximum"},
      {Minimal(complete, R"("inactivity_timeout_seconds":"1h",)"), "type"},
      {Minimal(complete, R"("on_timeout":"later",)"), "on_timeout"},
      {checklist,
       "/inactivity_timeout_seconds: a flow with `assignment` ends when its assignment expires"},
      {Minimal(R"([{"id":"a","kind":"ask_text","prompt":"p","field":"f","next":"nowhere"}])"),
       "/next: no step 'nowhere'"},
      {Minimal(R"([{"id":"a","kind":"ask_text","prompt":"p","field":"f"}])"),
       "needs `field` and `next`"},
      {Minimal(
           R"([{"id":"a","kind":"buttons","prompt":"p","buttons":[{"id":"x","title":"This title is too long","next":"a"}]}])"),
       "maxLength"},
      {Minimal(
           R"([{"id":"a","kind":"buttons","prompt":"p","buttons":[{"id":"w","title":"1","next":"a"},{"id":"x","title":"2","next":"a"},{"id":"y","title":"3","next":"a"},{"id":"z","title":"4","next":"a"}]}])"),
       "maxItems"},
      {Minimal(
           R"([{"id":"a","kind":"ask_text","prompt":"p","field":"f","next":"b","extract":[{"field":"g","label":"G","prompt":"?","patterns":["(unclosed"]}]},{"id":"b","kind":"complete","prompt":"bye"}])"),
       "/steps/0/extract/0/patterns/0: not a valid regular expression"},
      {Minimal(
           R"([{"id":"a","kind":"complete","prompt":"p"},{"id":"a","kind":"complete","prompt":"q"}])"),
       "step id used twice"},
      {Minimal(R"([{"id":"a","kind":"complete","prompt":"p"}])", R"("colour":"red",)"),
       "additionalProperties"},
      {Minimal(
           R"([{"id":"a","kind":"checklist","prompt":"p","photo_required":"r","photo_pending":"q","invalid":"i","next":"b"},)"
           R"({"id":"b","kind":"complete","prompt":"bye"}])"),
       "checklist step (in a flow with `assignment`)"},
      {R"({"schema":"flow","version":1,"name":"t","description":"test","triggers":[],"start":"a","steps":[{"id":"a","kind":"complete","prompt":"p"}]})",
       "a flow needs a trigger, `assignment`"},
      {Minimal(
           R"([{"id":"a","kind":"detect","prompt":"p","field":"s","next":"b","invalid":"i"},{"id":"b","kind":"complete","prompt":"bye"}])"),
       "detect step needs"},
      {Minimal(
           R"([{"id":"a","kind":"detect","prompt":"p","field":"s","next":"b","invalid":"i","handoff":"h","keywords":{"x":"y"}},{"id":"b","kind":"complete","prompt":"bye"}])"),
       "/handoff: no step 'h'"},
      {Minimal(
           R"([{"id":"a","kind":"ask_text","prompt":"p","field":"f","next":"b","extract":[{"field":"g","label":"G","prompt":"?","rest":true}]},{"id":"b","kind":"complete","prompt":"bye"}])"),
       "the step needs its own patterns"},
      {Minimal(R"([{"id":"a","kind":"complete","prompt":"p"}])", R"("fallback":"t",)"),
       "cannot fall back to itself"},
      {Minimal(
           R"([{"id":"a","kind":"confirm","prompt":"p","invalid":"i","next":"b"},{"id":"b","kind":"complete","prompt":"bye"}])"),
       "confirm step needs"},
  };
  for (const auto& c : cases) {
    FlowSet set;
    Status s = set.Add(c.json, "flows/t.json", Schemas());
    EXPECT_FALSE(s.ok()) << c.json;
    EXPECT_NE(s.message().find("flows/t.json"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
    EXPECT_EQ(set.size(), 0u);
  }
  FlowSet set;
  ASSERT_TRUE(
      set.Add(Minimal(R"([{"id":"a","kind":"complete","prompt":"p"}])"), "one.json", Schemas())
          .ok());
  Status twice = set.Add(
      R"({"schema":"flow","version":1,"name":"u","description":"d","triggers":["GO"],"start":"a","steps":[{"id":"a","kind":"complete","prompt":"p"}]})",
      "two.json", Schemas());
  EXPECT_NE(twice.message().find("'GO' already starts flow 't'"), std::string::npos)
      << twice.message();
  EXPECT_FALSE(FlowSet::LoadDir("/nonexistent-flows", Schemas()).ok());
}

TEST(StateCodec, RoundTripsEveryMemberAndReadsOldRowsAsIdle) {
  ConversationState s;
  s.flow = "listing";
  s.step = "photos";
  s.asking = "price";
  s.entered_at = kT0;
  s.messages = 7;
  s.last_inbound_at = kT0 + 5;
  s.fields["email"] = "a\"b@example.com";
  s.photos["photos"] = {Photo{"m1", kT0 + 1, "", ""},
                        Photo{"m2", kT0 + 2, std::string(64, 'f') + ".png", ""}};
  s.acked = {"photos"};
  s.history = {{"email", kT0 - 2}, {"photos", kT0}};
  s.pending_uploads = {{"m9", "listing"}};
  PendingResult r;
  r.id = "k:wamid.1:completed";
  r.sink = "listing";
  r.type = "listing.submitted";
  r.flow = "listing";
  r.outcome = "submitted";
  r.completed_at = kT0;
  r.due_at = kT0 + 600;
  r.fields = {{"price", "35"}};
  r.photos["photos"] = {Photo{"m3", kT0, "", "not stored within 600 s of submission"}};
  s.results = {r};
  ConversationState back = DecodeState(EncodeState(s));
  EXPECT_EQ(EncodeState(back), EncodeState(s));
  EXPECT_EQ(back.pending_uploads, s.pending_uploads);
  EXPECT_EQ(back.photos["photos"][1].stored_name, std::string(64, 'f') + ".png");
  EXPECT_EQ(back.fields["email"], "a\"b@example.com");
  ASSERT_EQ(back.results.size(), 1u);
  EXPECT_EQ(back.results[0].photos["photos"][0].missing, "not stored within 600 s of submission");
  ConversationState old = DecodeState(R"({"step":"chatting","messages":3,"photos":2})");
  EXPECT_TRUE(old.flow.empty());
  EXPECT_EQ(old.messages, 3);
  EXPECT_TRUE(DecodeState("not json").flow.empty());
}

// A result whose photos are all stored goes to its sink with SUBMIT, named after the trigger.
TEST(Engine, AResultWithEveryPhotoStoredIsDeliveredAtSubmit) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  Event stored;
  stored.kind = Event::Kind::kMediaStored;
  stored.media_id = "a";
  stored.stored_name = std::string(64, 'a') + ".jpg";
  c.Send(stored);
  c.Send(Text("DONE", kT0 + 12));
  c.Send(Tap("flaws_no", "NO, SKIP", kT0 + 13));
  Event submit = Text("submit", kT0 + 14);
  submit.id = "106540352242922:16505550000:wamid.submit";
  auto t = c.Send(submit);
  ASSERT_EQ(Count(t, Effect::Kind::kDeliver), 1u);
  EXPECT_EQ(Count(t, Effect::Kind::kResultDue), 0u);
  for (const auto& e : t.effects) {
    if (e.kind != Effect::Kind::kDeliver) continue;
    EXPECT_EQ(e.result.id, "106540352242922:16505550000:wamid.submit:completed")
        << "the flow.completed dedupe key";
    EXPECT_EQ(e.result.sink, "listing");
    EXPECT_EQ(e.result.completed_at, kT0 + 14);
  }
  EXPECT_TRUE(c.state.results.empty());
}

// Photos that never come back do not hold a result forever: at its due time it goes with them
// named as missing; a failed one is named with its reason. A reminder that comes back early waits
// again.
TEST(Engine, AResultGoesAtItsDueTimeWithThePhotosNotStoredNamedAsMissing) {
  Chat c(EngineSettings{3600, 100, 300, ""});
  c.ToPhotos();
  c.Send(Image("a", kT0 + 10));
  c.Send(Image("b", kT0 + 11));
  c.Send(Text("DONE", kT0 + 12));
  c.Send(Tap("flaws_no", "NO, SKIP", kT0 + 13));
  auto submit = c.Send(Text("submit", kT0 + 14));
  ASSERT_EQ(Count(submit, Effect::Kind::kResultDue), 1u);
  for (const auto& e : submit.effects) {
    if (e.kind != Effect::Kind::kResultDue) continue;
    EXPECT_EQ(e.delay_ms, 300000);
  }
  Event failed;
  failed.kind = Event::Kind::kMediaFailed;
  failed.media_id = "a";
  failed.reason = "sha256 mismatch";
  EXPECT_EQ(Count(c.Send(failed, kT0 + 20), Effect::Kind::kDeliver), 0u)
      << "b is still being fetched";
  Event due;
  due.kind = Event::Kind::kResultDue;
  due.result_id = c.state.results.at(0).id;
  auto early = c.Send(due, kT0 + 200);
  EXPECT_EQ(early.note, "result_waiting");
  ASSERT_EQ(Count(early, Effect::Kind::kResultDue), 1u);
  EXPECT_EQ(early.effects[0].delay_ms, 114000);
  auto on_time = c.Send(due, kT0 + 314);
  EXPECT_EQ(on_time.note, "result_due");
  ASSERT_EQ(Count(on_time, Effect::Kind::kDeliver), 1u);
  const auto& photos = on_time.effects[0].result.photos.at("photos");
  ASSERT_EQ(photos.size(), 2u);
  EXPECT_EQ(photos[0].missing, "could not be stored: sha256 mismatch");
  EXPECT_EQ(photos[1].missing, "not stored within 300 s of submission");
  EXPECT_TRUE(c.state.results.empty());
  EXPECT_TRUE(c.Send(due, kT0 + 400).effects.empty())
      << "a second reminder finds nothing to deliver";
}

// --- checklists ---

AssignmentRun LineQa(const std::string& id = "asg_1") {
  AssignmentRun a;
  a.id = id;
  a.title = "Line QA";
  a.reference = "MGR-7";
  a.operator_name = "Ana";
  a.flow = "checklist";
  a.questions = {Question{"Guard closed?", "required", {"OK", "NOT OK"}, {"NOT OK"}},
                 Question{"Batch label", "required", {}, {}},
                 Question{"Spills?", "optional", {"NONE", "FOUND"}, {"FOUND"}},
                 Question{"Notes for the next shift", "none", {}, {}}};
  return a;
}

Event Assigned(const AssignmentRun& a) {
  Event e;
  e.kind = Event::Kind::kAssignmentStarted;
  e.assignment = a;
  return e;
}

Event Ended(const std::string& id, const std::string& reason) {
  Event e;
  e.kind = Event::Kind::kAssignmentEnded;
  e.assignment.id = id;
  e.reason = reason;
  return e;
}

Event Captioned(const std::string& media_id, const std::string& caption, int64_t at) {
  Event e = Image(media_id, at);
  e.text = caption;
  return e;
}

// The shipped checklist takes an inspection report (a PDF) like a photo: fetched for the question,
// told to media it may be an image or a document, counted, and carried to the result with its type
// and its (safe) file name. A video or a voice note is still refused with the question's words.
TEST(Checklist, APdfAnswersAQuestionLikeAPhotoAndAVoiceNoteIsRefused) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  for (auto [type, mime] : {std::pair{"audio", "audio/ogg; codecs=opus"}, {"video", "video/mp4"}}) {
    auto refused = c.Send(Media(type, std::string("m-") + type, mime, kT0 + 15));
    EXPECT_EQ(Count(refused, Effect::Kind::kFetchMedia), 0u) << type;
    EXPECT_EQ(
        Replies(refused),
        std::vector<std::string>{"Question 1 needs a photo. Send a photo (with your note as its "
                                 "caption, or the note right after it)."})
        << type;
  }
  EXPECT_EQ(c.state.photos.count("q1"), 0u);
  Event pdf = Media("document", "m-pdf", "application/pdf", kT0 + 20);
  pdf.text = "OK";
  pdf.filename = "../../reports/line 4\r\ninspection.pdf";
  auto q1 = c.Send(pdf);
  EXPECT_EQ(q1.note, "answered");
  ASSERT_EQ(Count(q1, Effect::Kind::kFetchMedia), 1u);
  for (const auto& e : q1.effects) {
    if (e.kind != Effect::Kind::kFetchMedia) continue;
    EXPECT_EQ(e.mime_type, "application/pdf");
    EXPECT_EQ(e.kinds, (std::vector<std::string>{"image", "document"}));
    EXPECT_EQ(e.keep_days, 400);
  }
  ASSERT_EQ(c.state.photos.at("q1").size(), 1u);
  const Photo& kept = c.state.photos.at("q1")[0];
  EXPECT_EQ(kept.kind, "document");
  EXPECT_EQ(kept.filename, "line 4inspection.pdf") << "no path, no line breaks";
  // media.stored brings the verified type; the state keeps it all across the row.
  Event stored;
  stored.kind = Event::Kind::kMediaStored;
  stored.media_id = "m-pdf";
  stored.stored_name = std::string(64, 'a') + ".pdf";
  stored.mime_type = "application/pdf";
  c.Send(stored, kT0 + 21);
  c.state = DecodeState(EncodeState(c.state));
  EXPECT_EQ(c.state.photos.at("q1")[0].filename, "line 4inspection.pdf");
  EXPECT_EQ(c.state.photos.at("q1")[0].kind, "document");
  EXPECT_EQ(c.state.photos.at("q1")[0].mime_type, "application/pdf");
  c.Send(Captioned("m2", "Batch 9", kT0 + 30));
  c.Send(Tap("answer_1", "NONE", kT0 + 40));
  auto summary = c.Send(Text("All good", kT0 + 50));
  EXPECT_NE(
      Replies(summary)[0].find("1. Guard closed?: OK (1 file)\n2. Batch label: Batch 9 (1 photo)"),
      std::string::npos)
      << Replies(summary)[0];
  Event confirm = Text("CONFIRM", kT0 + 60);
  confirm.id = "106540352242922:16505550000:wamid.confirm";
  c.Send(confirm);
  ASSERT_EQ(c.state.results.size(), 1u) << "waits for q2's photo";
  const Photo& delivered = c.state.results[0].photos.at("q1").at(0);
  EXPECT_EQ(delivered.stored_name, std::string(64, 'a') + ".pdf");
  EXPECT_EQ(delivered.mime_type, "application/pdf");
  EXPECT_EQ(delivered.filename, "line 4inspection.pdf");
}

// A document media could not take (a web page sent as a PDF) is dropped from the count and the
// operator hears it in plain words, never the reason; asked to send it again only while the
// question still takes documents.
TEST(Checklist, ARefusedDocumentIsToldInPlainWords) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  c.Send(Media("document", "m-html", "application/pdf", kT0 + 20));
  ASSERT_EQ(c.state.photos.at("q1").size(), 1u);
  Event failed;
  failed.kind = Event::Kind::kMediaFailed;
  failed.media_id = "m-html";
  failed.code = "not_a_photo";
  failed.reason = "content does not look like application/pdf (it is an HTML page)";
  auto t = c.Send(failed, kT0 + 21);
  EXPECT_EQ(Replies(t), std::vector<std::string>{
                            "We can only take PDF files, so we couldn't save that document. "
                            "Please send it again."});
  EXPECT_TRUE(c.state.photos.at("q1").empty());
  EXPECT_EQ(PhotoFailedText("too_large", false, "document"),
            "That document was too large for us to save.");
  EXPECT_EQ(PhotoFailedText("expired", false, "audio"),
            "That recording was no longer available from WhatsApp by the time we fetched it.");
  EXPECT_EQ(PhotoFailedText("damaged", true, "video"),
            "That video didn't come through. Please send it again.");
  EXPECT_EQ(PhotoFailedText("not_a_photo", false),
            "That file didn't look like a photo, so we couldn't save it.");
}

TEST(Engine, SafeFileNamesKeepNoPathNoControlsAndABoundedLength) {
  EXPECT_EQ(SafeFileName("report.pdf"), "report.pdf");
  EXPECT_EQ(SafeFileName("C:\\Users\\x\\évaluation.pdf"), "évaluation.pdf");
  EXPECT_EQ(SafeFileName("../../etc/passwd"), "passwd");
  EXPECT_EQ(SafeFileName(std::string("a\0b\x7f\x1b[31mc.pdf", 14)), "ab[31mc.pdf");
  EXPECT_EQ(SafeFileName("dir/.."), "");
  EXPECT_EQ(SafeFileName("  "), "");
  const std::string longest = SafeFileName(std::string(300, 'x') + ".pdf");
  EXPECT_LE(longest.size(), 120u);
  EXPECT_EQ(SafeFileName(std::string(119, 'x') + "é"), std::string(119, 'x'))
      << "cut at a character's start";
}

// A flow may opt any photo step into other media: a voice note in a step that takes audio is
// fetched like a photo and counted; a step that does not name it still refuses it.
TEST(FlowLoader, AStepTakesTheMediaItsAcceptsNames) {
  FlowSet set;
  ASSERT_TRUE(
      set.Add(
             Minimal(
                 R"([{"id":"a","kind":"collect_photos","prompt":"Send photos or voice notes","field":"shots",)"
                 R"("accepts":["image","audio"],"done_keyword":"DONE","first_ack":"Got it!","empty":"none",)"
                 R"("expired":"gone","late":"late","not_a_photo":"Photos or voice notes only.","next":"b"},)"
                 R"({"id":"b","kind":"complete","prompt":"bye"}])"),
             "voice.json", Schemas())
          .ok());
  Engine engine(set, {});
  ConversationState st = engine.Advance({}, Text("GO", kT0), kT0).state;
  ASSERT_EQ(st.step, "a");
  auto voice = engine.Advance(st, Media("audio", "v1", "audio/ogg; codecs=opus", kT0 + 1), kT0);
  EXPECT_EQ(voice.note, "photo");
  ASSERT_EQ(Count(voice, Effect::Kind::kFetchMedia), 1u);
  EXPECT_EQ(voice.state.photos.at("shots").at(0).kind, "audio");
  auto doc = engine.Advance(voice.state, Media("document", "d1", "application/pdf", kT0 + 2), kT0);
  EXPECT_EQ(doc.note, "not_a_photo");
  EXPECT_EQ(Replies(doc), std::vector<std::string>{"Photos or voice notes only."});
  EXPECT_EQ(Count(doc, Effect::Kind::kFetchMedia), 0u);
  // Shipped: the checklist takes photos and documents, the listing photos only.
  EXPECT_EQ(Shipped().Find("checklist")->Find("questions")->accepts,
            (std::vector<std::string>{"image", "document"}));
  EXPECT_EQ(Shipped().Find("listing")->Find("photos")->accepts, std::vector<std::string>{"image"});
  // `accepts` where no media is taken, or a kind that is not one: refused at load.
  for (
      const auto& [json, expect] :
      {std::pair<std::string, std::string>{
           Minimal(
               R"([{"id":"a","kind":"ask_text","prompt":"p","field":"f","next":"b","accepts":["document"]},)"
               R"({"id":"b","kind":"complete","prompt":"bye"}])"),
           "only collect_photos and checklist steps do"},
       {Minimal(R"([{"id":"a","kind":"complete","prompt":"p","accepts":["sticker"]}])"), "enum"},
       {Minimal(R"([{"id":"a","kind":"complete","prompt":"p","accepts":[]}])"), "minItems"}}) {
    FlowSet bad;
    Status s = bad.Add(json, "flows/t.json", Schemas());
    EXPECT_NE(s.message().find(expect), std::string::npos) << s.message();
  }
}

// The opening template goes in the language of the number's templates (the registry's), else the
// flow's (deploy/flows/checklist.json: en).
TEST(Checklist, TheTemplateGoesInTheNumbersLanguageElseTheFlows) {
  Chat spanish;
  Event e = Assigned(LineQa());
  e.number_templates_language = "es";
  auto es = spanish.Send(e, kT0);
  ASSERT_EQ(Count(es, Effect::Kind::kSendTemplate), 1u);
  EXPECT_EQ(es.effects[0].template_language, "es");
  Chat plain;
  auto en = plain.Send(Assigned(LineQa()), kT0);
  ASSERT_EQ(Count(en, Effect::Kind::kSendTemplate), 1u);
  EXPECT_EQ(en.effects[0].template_language, "en");
}

// Outside the 24-hour window the checklist opens with the approved template (operator, title,
// count); the operator's reply, whatever it is, brings question 1.
TEST(Checklist, OutsideTheWindowATemplateOpensItAndTheReplyBringsTheFirstQuestion) {
  Chat c;
  auto start = c.Send(Assigned(LineQa()), kT0);
  EXPECT_EQ(start.note, "assignment_started");
  ASSERT_EQ(start.effects.size(), 1u);
  EXPECT_EQ(start.effects[0].kind, Effect::Kind::kSendTemplate);
  EXPECT_EQ(start.effects[0].template_name, "checklist_assigned");
  EXPECT_EQ(start.effects[0].template_params, (std::vector<std::string>{"Ana", "Line QA", "4"}));
  auto reply = c.Send(Tap("start", "Start", kT0 + 60));
  EXPECT_EQ(reply.note, "checklist_opened");
  ASSERT_EQ(reply.effects.size(), 1u);
  EXPECT_EQ(reply.effects[0].kind, Effect::Kind::kSendButtons);
  EXPECT_EQ(reply.effects[0].text, "📋 Question 1 of 4: Guard closed?");
  EXPECT_EQ(reply.effects[0].buttons, (std::vector<std::pair<std::string, std::string>>{
                                          {"answer_1", "OK"}, {"answer_2", "NOT OK"}}));
}

// An assignment's run survives the state row: its questions (with the answers that need a note)
// and an answer waiting for its note.
TEST(Checklist, ARunWaitingForANoteRoundTripsThroughTheStateRow) {
  ConversationState s;
  s.assignment = LineQa();
  s.assignment.pending_answer = "NOT OK";
  ConversationState back = DecodeState(EncodeState(s));
  ASSERT_EQ(back.assignment.questions.size(), 4u);
  EXPECT_EQ(back.assignment.questions[0].answers, (std::vector<std::string>{"OK", "NOT OK"}));
  EXPECT_EQ(back.assignment.questions[0].note_required, (std::vector<std::string>{"NOT OK"}));
  EXPECT_TRUE(back.assignment.questions[1].note_required.empty());
  EXPECT_EQ(back.assignment.pending_answer, "NOT OK");
}

// Operators answer in the format they were given: the answer, a separator, a note. The longest
// allowed answer the text begins with wins (case and spacing aside); "OKAY" is not "OK".
TEST(Checklist, ATypedAnswerIsTheLongestAllowedPrefixAndTheRestItsNote) {
  const std::vector<std::string> ok{"OK", "NOT OK"};
  struct Case {
    const char* text;
    const char* answer;
    const char* note;
  } cases[] = {{"OK - Oil level normal", "OK", "Oil level normal"},
               {"NOT OK - guard cracked", "NOT OK", "guard cracked"},
               {"not ok: guard cracked", "NOT OK", "guard cracked"},
               {"Not  OK , guard cracked ", "NOT OK", "guard cracked"},
               {"ok– fine", "OK", "fine"},
               {"OK — fine", "OK", "fine"},
               {"ok. all good", "OK", "all good"},
               {"OK guard closed", "OK", "guard closed"},
               {" ok ", "OK", ""},
               {"NOT OK", "NOT OK", ""},
               {"OK -", "OK", ""},
               {"OKAY", "", ""},
               {"NOT", "", ""},
               {"K", "", ""},
               {"", "", ""},
               {"not okay", "", ""},
               {"- OK", "", ""}};
  for (const auto& c : cases) {
    TypedAnswer t = ParseTypedAnswer(ok, c.text);
    EXPECT_EQ(t.answer, c.answer) << '"' << c.text << '"';
    EXPECT_EQ(t.note, c.note) << '"' << c.text << '"';
  }
}

// The notes reach the fields (q<i>_note), the summary and the submission; an answer the checklist
// wants a note for (NOT OK, FOUND) that comes without one asks for it, and the next text is it.
TEST(Checklist, NotesAreKeptAndAnAnswerThatNeedsOneAsksForIt) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  auto q1 = c.Send(Captioned("m1", "NOT OK - guard cracked", kT0 + 20));
  EXPECT_EQ(q1.note, "answered");
  for (const auto& e : q1.effects) {
    if (e.kind == Effect::Kind::kFetchMedia) {
      EXPECT_EQ(e.keep_days, 400) << "the checklist's evidence is kept 400 days";
    }
  }
  EXPECT_EQ(Count(q1, Effect::Kind::kFetchMedia), 1u);
  EXPECT_EQ(c.state.fields.at("q1"), "NOT OK");
  EXPECT_EQ(c.state.fields.at("q1_note"), "guard cracked");
  c.Send(Captioned("m2", "Batch 4711", kT0 + 30));
  // A tapped FOUND: no note yet, so it is asked for; the next text is the note.
  auto tapped = c.Send(Tap("answer_2", "FOUND", kT0 + 40));
  EXPECT_EQ(tapped.note, "note_requested");
  EXPECT_EQ(Replies(tapped)[0],
            "Please add a note for FOUND on question 3: what did you find? (For example: FOUND - "
            "what you saw.)");
  EXPECT_EQ(c.state.assignment.index, 2u) << "still question 3";
  auto note = c.Send(Text("oil under the press", kT0 + 41));
  EXPECT_EQ(note.note, "answered");
  EXPECT_EQ(c.state.fields.at("q3"), "FOUND");
  EXPECT_EQ(c.state.fields.at("q3_note"), "oil under the press");
  auto last = c.Send(Text("All good", kT0 + 50));
  EXPECT_EQ(Replies(last)[0],
            "Here are your answers:\n1. Guard closed?: NOT OK — guard cracked (1 photo)\n2. Batch "
            "label: Batch 4711 (1 photo)\n"
            "3. Spills?: FOUND — oil under the press\n4. Notes for the next shift: All good\nReply "
            "CONFIRM to submit.");
}

// An answer that needs a note and a note that comes with its own answer: the answer typed last
// wins.
TEST(Checklist, AnAnswerWaitingForItsNoteCanBeChangedByTypingAnother) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  auto asked = c.Send(Captioned("m1", "NOT OK", kT0 + 20));
  EXPECT_EQ(asked.note, "note_requested");
  EXPECT_EQ(c.state.assignment.pending_answer, "NOT OK");
  auto changed = c.Send(Text("ok - it was closed after all", kT0 + 21));
  EXPECT_EQ(changed.note, "answered");
  EXPECT_EQ(c.state.fields.at("q1"), "OK");
  EXPECT_EQ(c.state.fields.at("q1_note"), "it was closed after all");
  EXPECT_TRUE(c.state.assignment.pending_answer.empty());
  // An answer that needs no note needs none: "OK" alone moves on.
  EXPECT_EQ(c.state.assignment.index, 1u);
}

// A checklist assigned in the middle of a listing puts the listing on hold, says so, and the
// listing resumes where it was once the checklist is submitted — its photos kept — or cancelled.
TEST(Checklist, AListingInterruptedByAnAssignmentIsPutOnHoldAndResumesAfterIt) {
  Chat c;
  c.ToPhotos();
  c.Send(Image("p1", kT0 + 10));
  c.Send(Image("p2", kT0 + 11));
  AssignmentRun one = LineQa("asg_9");
  one.questions = {Question{"Anything to report?", "none", {}, {}}};
  auto start = c.Send(Assigned(one), kT0 + 20);
  ASSERT_EQ(Replies(start).size(), 1u);
  EXPECT_NE(
      Replies(start)[0].find(
          "Your listing is on hold until this checklist is done; we'll pick it up right after."),
      std::string::npos)
      << Replies(start)[0];
  EXPECT_EQ(c.state.flow, "checklist");
  // The listing's photos are stored while it is on hold: recorded with it.
  Event stored;
  stored.kind = Event::Kind::kMediaStored;
  stored.media_id = "p1";
  stored.stored_name = "p1.jpg";
  EXPECT_EQ(c.Send(stored).note, "media_stored_on_hold");
  c.Send(Text("All quiet", kT0 + 30));
  Event confirm = Text("CONFIRM", kT0 + 40);
  auto done = c.Send(confirm);
  auto replies = Replies(done);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0], "✅ Checklist submitted. Thank you!");
  EXPECT_EQ(replies[1],
            "Now, back to your listing.\n\nNow send photos of the item. Text DONE when finished.");
  EXPECT_EQ(c.state.flow, "listing");
  EXPECT_EQ(c.state.step, "photos");
  EXPECT_EQ(c.Photos(), 2u) << "the photos sent before the checklist are kept";
  EXPECT_EQ(c.state.photos.at("photos").at(0).stored_name, "p1.jpg") << "stored while on hold";
  EXPECT_EQ(c.state.fields.at("email"), "kerry@example.com");
  EXPECT_EQ(Replies(c.Send(Text("DONE", kT0 + 50)))[0].rfind("Great! Got 2 photos", 0), 0u);
  // Cancelled by the manager: the listing resumes the same way, and the state survives the row.
  Chat d;
  d.ToPhotos();
  d.Send(Image("q1", kT0 + 10));
  d.Send(Assigned(one), kT0 + 20);
  EXPECT_FALSE(DecodeState(EncodeState(d.state)).set_aside.empty());
  auto ended = d.Send(Ended("asg_9", "cancelled"), kT0 + 30);
  ASSERT_EQ(Replies(ended).size(), 2u);
  EXPECT_EQ(Replies(ended)[1],
            "Now, back to your listing.\n\nNow send photos of the item. Text DONE when finished.");
  EXPECT_EQ(d.state.step, "photos");
  EXPECT_EQ(d.Photos(), 1u);
}

// Seed 001's three ways to answer, a photo-required question refusing text, a list of answers,
// then the summary; CONFIRM completes the assignment and delivers its result.
TEST(Checklist, AnswersThreeWaysThenConfirmCompletesAndDelivers) {
  Chat c;
  c.Send(Text("hello", kT0));  // inside the window now
  auto start = c.Send(Assigned(LineQa()), kT0 + 10);
  ASSERT_EQ(Replies(start).size(), 1u) << "one message: two could arrive in either order";
  EXPECT_EQ(Replies(start)[0].substr(0, 8), "Hi Ana! ");
  EXPECT_NE(Replies(start)[0].find("\n\n📋 Question 1 of 4: Guard closed?"), std::string::npos)
      << Replies(start)[0];
  // Text only where a photo is required: refused, the question stays.
  auto refused = c.Send(Text("OK", kT0 + 20));
  EXPECT_EQ(refused.note, "photo_required");
  EXPECT_EQ(Replies(refused)[0],
            "Question 1 needs a photo. Send a photo (with your note as its caption, or the note "
            "right after it).");
  // 1. Photo with its caption: saved, the next question at once.
  auto q1 = c.Send(Captioned("m1", "ok", kT0 + 30));
  EXPECT_EQ(q1.note, "answered");
  EXPECT_EQ(Count(q1, Effect::Kind::kFetchMedia), 1u);
  EXPECT_EQ(Replies(q1)[0], "📋 Question 2 of 4: Batch label");
  EXPECT_EQ(c.state.fields.at("q1"), "OK") << "the allowed answer's own spelling";
  // 2. Photo first: kept as pending; the next text completes the answer.
  auto photo = c.Send(Image("m2", kT0 + 40));
  EXPECT_EQ(photo.note, "photo_pending");
  EXPECT_EQ(Replies(photo)[0], "Got the photo for question 2. Now send your note for it.");
  auto note = c.Send(Text("Batch 4711", kT0 + 41));
  EXPECT_EQ(note.note, "answered");
  EXPECT_EQ(c.state.fields.at("q2"), "Batch 4711");
  ASSERT_EQ(c.state.photos.at("q2").size(), 1u);
  // A caption that is not one of the allowed answers: asked again, and the photo waits for the
  // text that is. (Question 3 takes NONE or FOUND.)
  EXPECT_EQ(c.state.assignment.index, 2u);
  // A text that is not one of the answers is asked again.
  auto wrong = c.Send(Text("maybe", kT0 + 50));
  EXPECT_EQ(wrong.note, "reprompted");
  EXPECT_EQ(Replies(wrong)[0], "Please answer question 3 with one of: NONE, FOUND.");
  // 3. Text only, where a photo is optional.
  c.Send(Tap("answer_1", "NONE", kT0 + 51));
  auto last = c.Send(Text("All good", kT0 + 60));
  ASSERT_EQ(Replies(last).size(), 1u);
  EXPECT_EQ(Replies(last)[0],
            "Here are your answers:\n1. Guard closed?: OK (1 photo)\n2. Batch label: Batch 4711 (1 "
            "photo)\n"
            "3. Spills?: NONE\n4. Notes for the next shift: All good\nReply CONFIRM to submit.");
  EXPECT_EQ(c.Send(Text("yes", kT0 + 61)).note, "reprompted");
  Event confirm = Text("confirm", kT0 + 62);
  confirm.id = "106540352242922:16505550000:wamid.confirm";
  auto done = c.Send(confirm);
  EXPECT_EQ(Count(done, Effect::Kind::kAssignmentDone), 1u);
  EXPECT_EQ(Count(done, Effect::Kind::kFlowCompleted), 1u);
  EXPECT_EQ(Count(done, Effect::Kind::kDeliver) + Count(done, Effect::Kind::kResultDue), 1u);
  for (const auto& e : done.effects) {
    if (e.kind == Effect::Kind::kAssignmentDone) {
      EXPECT_EQ(e.assignment_id, "asg_1");
      EXPECT_EQ(e.fields.at("q4"), "All good");
    }
  }
  EXPECT_EQ(Replies(done)[0], "✅ Checklist submitted. Thank you!");
  EXPECT_TRUE(c.state.assignment.id.empty());
  ASSERT_EQ(c.state.results.size(), 1u) << "waiting for its photos to be stored";
  EXPECT_EQ(c.state.results[0].type, "checklist.completed");
  EXPECT_EQ(c.state.results[0].sink, "checklist");
  EXPECT_EQ(c.state.results[0].fields.at("reference"), "MGR-7");
}

// A photo whose caption is not one of the allowed answers is asked again; the photo is kept, so
// the answer that follows as text completes it.
TEST(Checklist, APhotoWithAWrongCaptionWaitsForTheRightAnswer) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  auto wrong = c.Send(Captioned("m1", "maybe", kT0 + 20));
  EXPECT_EQ(wrong.note, "reprompted");
  EXPECT_EQ(Replies(wrong)[0], "Please answer question 1 with one of: OK, NOT OK.");
  auto right = c.Send(Tap("answer_1", "OK", kT0 + 30));
  EXPECT_EQ(right.note, "answered");
  EXPECT_EQ(c.state.fields.at("q1"), "OK");
  EXPECT_EQ(c.state.photos.at("q1").size(), 1u);
}

// Two answers sent at once for the same question: the second was sent before question 2 was
// asked, so it is not taken as question 2's answer.
TEST(Checklist, ASecondAnswerSentBeforeTheNextQuestionIsNotTakenForIt) {
  Chat c;
  c.Send(Text("hello", kT0));
  AssignmentRun a = LineQa();
  a.questions[0].photo = "optional";
  c.Send(Assigned(a), kT0 + 10);
  EXPECT_EQ(c.Send(Text("OK", kT0 + 20)).note, "answered");
  auto second = c.Send(Text("NOT OK", kT0 + 20));
  EXPECT_EQ(second.note, "superseded");
  EXPECT_TRUE(second.effects.empty());
  EXPECT_EQ(c.state.fields.at("q1"), "OK");
  EXPECT_EQ(c.state.assignment.index, 1u);
  EXPECT_FALSE(c.state.fields.count("q2"));
}

TEST(Checklist, ACancelTellsTheOperatorAndALaterAnswerHearsItWasCancelled) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  EXPECT_TRUE(c.Send(Ended("asg_other", "cancelled"), kT0 + 15).effects.empty()) << "not this run";
  auto cancelled = c.Send(Ended("asg_1", "cancelled"), kT0 + 20);
  EXPECT_EQ(cancelled.note, "assignment_cancelled");
  EXPECT_EQ(Replies(cancelled)[0],
            "This checklist (Line QA) was cancelled by your manager. No need to answer further.");
  EXPECT_TRUE(c.state.flow.empty());
  auto later = c.Send(Captioned("m9", "OK", kT0 + 30));
  EXPECT_EQ(Replies(later)[0], "This checklist was cancelled, so that answer was not saved.");
  EXPECT_EQ(Count(later, Effect::Kind::kFetchMedia), 0u);
  EXPECT_EQ(c.Send(Text("hi", kT0 + 40)).note, "menu") << "said once";
}

TEST(Checklist, AnExpiryOutsideTheWindowEndsTheRunSilently) {
  Chat c;
  c.Send(Text("hello", kT0));
  c.Send(Assigned(LineQa()), kT0 + 10);
  auto inside = c.Send(Ended("asg_1", "expired"), kT0 + 3600);
  EXPECT_EQ(Replies(inside)[0],
            "This checklist (Line QA) has expired and was not submitted. Ask your manager to "
            "assign it again.");
  c.Send(Assigned(LineQa("asg_2")), kT0 + 3700);
  auto outside = c.Send(Ended("asg_2", "expired"), kT0 + 2 * 86400);
  EXPECT_EQ(outside.note, "assignment_expired");
  EXPECT_TRUE(Replies(outside).empty()) << "outside the window nothing free-form may go";
  EXPECT_TRUE(c.state.flow.empty());
}

// --- the lead flow (deploy/flows/lead.json), started by --default_flow ---

constexpr const char* kGreeting = "Hi \xF0\x9F\x91\x8B I'm ABCai from Al Ain Business Center.";

EngineSettings LeadSettings() {
  EngineSettings s;
  s.default_flow = "lead";
  return s;
}

struct Lead : Chat {
  Lead() : Chat(LeadSettings()) {}
  // Sends a text; returns its one reply (a test fails when there is not exactly one).
  std::string Say(const std::string& text) {
    last = Send(Text(text, at += 5));
    auto r = Replies(last);
    EXPECT_EQ(r.size(), 1u) << text;
    return r.empty() ? "" : r[0];
  }
  const PendingResult* Delivered() const {
    for (const auto& e : last.effects) {
      if (e.kind == Effect::Kind::kDeliver) return &e.result;
    }
    return nullptr;
  }
  int64_t at = kT0;
  Transition last;
};

TEST(LeadFlow, AsksTheServiceThenNameNationalityEmailAndTimeInThatOrderAndHandsOver) {
  Lead c;
  EXPECT_EQ(c.Say("Hello"), std::string(kGreeting) + "\n\nHow can I help you today?");
  EXPECT_EQ(c.state.flow, "lead");
  EXPECT_EQ(c.Say("I would like to bring my family, a family visa"),
            "May I know your full name, please?");
  EXPECT_EQ(c.Say("my name is ana lopez"), "What is your nationality?");
  EXPECT_EQ(c.Say("Filipina"),
            "What is your email address, and when is the best time to call you?");
  EXPECT_EQ(
      c.Say("ana@Example.com, weekdays after 5pm"),
      "Thank you, Ana Lopez. Our team will call you weekdays after 5pm about your family visa.");
  const PendingResult* r = c.Delivered();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, "lead.qualified");
  EXPECT_EQ(r->sink, "lead");
  EXPECT_EQ(r->fields.at("service"), "family visa");
  EXPECT_EQ(r->fields.at("name"), "Ana Lopez");
  EXPECT_EQ(r->fields.at("nationality"), "Filipina");
  EXPECT_EQ(r->fields.at("email"), "ana@example.com");
  EXPECT_EQ(r->fields.at("best_time"), "weekdays after 5pm");
  EXPECT_EQ(r->fields.at("first_message"), "Hello");
  EXPECT_TRUE(c.state.flow.empty());
}

TEST(LeadFlow, AServiceInTheFirstMessageSkipsTheQuestion) {
  Lead c;
  EXPECT_EQ(c.Say("Hi, I need a family visa"),
            std::string(kGreeting) + "\n\nMay I know your full name, please?");
  EXPECT_EQ(c.state.fields.at("service"), "family visa");
  // Whatever the first message already says is not asked again.
  Lead d;
  EXPECT_EQ(d.Say("Good morning, my name is Omar Khan, I am Pakistani and want to start a "
                  "business. My email is omar.khan@example.org"),
            std::string(kGreeting) + "\n\nThanks! And when is the best time to call you?");
  EXPECT_EQ(d.state.fields.at("name"), "Omar Khan");
  EXPECT_EQ(d.state.fields.at("nationality"), "Pakistani");
  EXPECT_EQ(d.state.fields.at("service"), "company setup");
  EXPECT_EQ(
      d.Say("tomorrow morning"),
      "Thank you, Omar Khan. Our team will call you tomorrow morning about your company setup.");
  ASSERT_NE(d.Delivered(), nullptr);
  EXPECT_EQ(d.Delivered()->fields.at("best_time"), "tomorrow morning");
}

TEST(LeadFlow, NotUnderstoodIsAskedInOtherWordsThenAPersonTakesOver) {
  Lead c;
  c.Say("Hello");
  EXPECT_EQ(
      c.Say("what are your prices?"),
      "Sorry, I didn't quite catch that. Could you tell me a little more about what you need?");
  EXPECT_EQ(c.last.note, "not_understood");
  EXPECT_EQ(c.Say("just call me"),
            "Thank you for your patience. A member of our team will reply to you here shortly.");
  EXPECT_EQ(c.last.note, "completed");
  const PendingResult* r = c.Delivered();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, "lead.handoff");
  EXPECT_EQ(r->fields.at("enquiry"), "what are your prices?\njust call me");
  // One miss, then understood: the count starts again at the next question.
  Lead d;
  d.Say("Hello");
  d.Say("hmm");
  EXPECT_EQ(d.Say("golden visa please"), "May I know your full name, please?");
}

TEST(LeadFlow, InvalidAnswersAreAskedAgainAndTheTimeCanComeSeparately) {
  Lead c;
  c.Say("I need a work permit");
  EXPECT_EQ(c.Say("4455"), "Please send your full name, like Maria Santos.");
  EXPECT_EQ(c.Say("I'm Li Wei"), "What is your nationality?");
  EXPECT_EQ(c.Say("I am from China"),
            "What is your email address, and when is the best time to call you?");
  EXPECT_EQ(c.state.fields.at("nationality"), "China");
  EXPECT_EQ(c.Say("after lunch"),
            "That doesn't look like an email address. Please send it again, like name@example.com, "
            "with the best time "
            "to call you.");
  EXPECT_EQ(c.Say("My email is li.wei@example.cn"),
            "Thanks! And when is the best time to call you?");
  EXPECT_EQ(c.Say("any time"),
            "Thank you, Li Wei. Our team will call you any time about your work permit.");
  // An email with a lead-in and the time after it.
  Lead d;
  d.Say("golden visa");
  d.Say("Sara Ahmed");
  d.Say("Emirati");
  d.Say("email: sara@example.ae - best time is Sunday 10am");
  EXPECT_EQ(d.state.fields.count("best_time"), 0u) << "the run completed";
  ASSERT_NE(d.Delivered(), nullptr);
  EXPECT_EQ(d.Delivered()->fields.at("best_time"), "Sunday 10am");
  EXPECT_EQ(d.Delivered()->fields.at("email"), "sara@example.ae");
}

// "I want a golden visa for my wife" is letters and spaces, and no name: a sentence led by a verb,
// a service, a question or more than five words is asked again once, politely, then a person
// takes over with what was said. A real name still goes through, with its lead-in stripped.
TEST(LeadFlow, ANameAnswerThatIsNoNameIsAskedOnceThenHandedOver) {
  for (const char* not_a_name : {"I want a golden visa for my wife", "golden visa for my wife",
                                 "need help with visa", "Can you call me tomorrow",
                                 "Maria Santos Lopez de la Cruz Fernandez", "what do you need"}) {
    Lead c;
    c.Say("I need a work permit");
    EXPECT_EQ(c.Say(not_a_name), "Please send your full name, like Maria Santos.") << not_a_name;
    EXPECT_TRUE(c.state.fields.count("name") == 0) << not_a_name << " taken as the name";
    EXPECT_EQ(c.Say("thanks"),
              "Thank you for your patience. A member of our team will reply to you here shortly.")
        << not_a_name;
    const PendingResult* r = c.Delivered();
    ASSERT_NE(r, nullptr) << not_a_name;
    EXPECT_EQ(r->type, "lead.handoff");
    EXPECT_NE(r->fields.at("enquiry").find(not_a_name), std::string::npos)
        << r->fields.at("enquiry");
  }
  for (const char* name :
       {"Maria Santos", "I'm Li Wei", "my name is ana lopez", "José María García", "Will Smith"}) {
    Lead c;
    c.Say("I need a work permit");
    EXPECT_EQ(c.Say(name), "What is your nationality?") << name;
    EXPECT_EQ(c.state.fields.count("name"), 1u) << name;
  }
  // One miss, then a name: the run goes on.
  Lead d;
  d.Say("I need a work permit");
  d.Say("I want a golden visa for my wife");
  EXPECT_EQ(d.Say("Sara Ahmed"), "What is your nationality?");
}

// The greeting is the number's: it precedes the first message the business sends in the
// conversation's life, whatever flow sends it (the listing has none of its own), and replaces the
// flow's where the number has one.
TEST(LeadFlow, TheNumbersGreetingGoesFirstWhateverFlowAnswers) {
  const std::string hello = "Hi \xF0\x9F\x91\x8B I'm Sam from Acme Resale.";
  Chat c;
  Event sell = Text("SELL", kT0);
  sell.number_greeting = hello;
  auto first = c.Send(sell);
  ASSERT_EQ(Replies(first).size(), 1u);
  EXPECT_EQ(Replies(first)[0], hello +
                                   "\n\nLet's list your item! What's your email address? (Send "
                                   "CANCEL at any time to stop.)");
  Event email = Text("kerry@example.com", kT0 + 1);
  email.number_greeting = hello;
  EXPECT_EQ(Replies(c.Send(email))[0].rfind("Describe the item", 0), 0u)
      << "once in the conversation's life";
  // The lead flow's own greeting gives way to the number's.
  Lead d;
  Event enquiry = Text("Hi, I need a family visa", kT0);
  enquiry.number_greeting = hello;
  auto lead = d.Send(enquiry);
  EXPECT_EQ(Replies(lead)[0], hello + "\n\nMay I know your full name, please?");
}

TEST(LeadFlow, TheGreetingGoesOnceInAConversationsLifeNotWithASecondEnquiry) {
  Lead c;
  EXPECT_EQ(c.Say("Hi, I need a family visa").rfind(kGreeting, 0), 0u);
  c.Say("Ana Lopez");
  c.Say("Filipina");
  c.Say("ana@example.com tonight");
  ASSERT_NE(c.Delivered(), nullptr);
  EXPECT_TRUE(c.state.greeted);
  // A second enquiry later: the flow starts again, without the greeting.
  EXPECT_EQ(c.Say("Hello again, I also need a golden visa"), "May I know your full name, please?");
  // The state that says so survives a round trip through the database's JSON.
  EXPECT_TRUE(DecodeState(EncodeState(c.state)).greeted);
  // SELL still starts the listing, in the middle of an enquiry too, and CANCEL leaves the lead
  // flow.
  Lead e;
  e.Say("Hello");
  EXPECT_EQ(e.Say("sell"),
            "Let's list your item! What's your email address? (Send CANCEL at any time to stop.)");
  EXPECT_EQ(e.state.flow, "listing");
  Lead d;
  d.Say("hello");
  EXPECT_EQ(d.Say("CANCEL"), "No problem. Message us any time you need help.");
  EXPECT_TRUE(d.state.flow.empty());
  d.Say("SELL");
  EXPECT_EQ(d.state.flow, "listing");
}

// --- the flows a number runs (the registry's `flows`) ---

// A shipped flow file (deploy/flows/<file>) with each `from` replaced by its `to`, once.
std::string EditedFlow(const std::string& file,
                       const std::vector<std::pair<std::string, std::string>>& edits) {
  std::string json = test::ReadFile(test::SourcePath("deploy/flows/" + file));
  for (const auto& [from, to] : edits) {
    auto at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) json.replace(at, from.size(), to);
  }
  return json;
}

// The shipped flows and a second one a person starts: "rent" (RENT), so a menu has two entries.
FlowSet WithRent() {
  FlowSet set = Shipped();
  Status st = set.Add(EditedFlow("listing.json", {{R"("name": "listing")", R"("name": "rent")"},
                                                  {R"("description": "list an item for sale")",
                                                   R"("description": "rent an item out")"},
                                                  {R"("SELL")", R"("RENT")"}}),
                      "rent.json", Schemas());
  EXPECT_TRUE(st.ok()) << st.ToString();
  return set;
}

// An event on a number that runs these flows.
Event On(std::vector<std::string> flows, Event e) {
  e.number_flows = std::move(flows);
  return e;
}

TEST(NumberFlows, ATriggerStartsOnlyAFlowTheNumberRunsAndTheMenuNamesOnlyThose) {
  Engine engine(WithRent(), EngineSettings{});
  // A number that names no flows runs every flow, as before.
  EXPECT_EQ(engine.Advance({}, Text("RENT", kT0), kT0).state.flow, "rent");
  EXPECT_EQ(Replies(engine.Advance({}, Text("hello", kT0), kT0))[0],
            "Hi! I can't help with \"hello\" yet. Send SELL to list an item for sale, or RENT to "
            "rent an item out.");
  // A number that runs the listing alone: RENT is any other text there, and the menu names SELL
  // alone.
  Transition rent = engine.Advance({}, On({"listing"}, Text("RENT", kT0)), kT0);
  EXPECT_TRUE(rent.state.flow.empty());
  EXPECT_EQ(rent.note, "menu");
  ASSERT_EQ(Replies(rent).size(), 1u);
  EXPECT_EQ(Replies(rent)[0],
            "Hi! I can't help with \"RENT\" yet. Send SELL to list an item for sale.");
  EXPECT_EQ(engine.Advance({}, On({"listing"}, Text("sell", kT0)), kT0).state.flow, "listing");
  // A number that runs no flow a person starts (checklists only): no trigger fires, the menu offers
  // nothing.
  Transition none = engine.Advance({}, On({"checklist"}, Text("SELL", kT0)), kT0);
  EXPECT_TRUE(none.state.flow.empty());
  ASSERT_EQ(Replies(none).size(), 1u);
  EXPECT_EQ(Replies(none)[0], "Hi! I can't help with \"SELL\" yet.");
}

TEST(NumberFlows, ADefaultFlowStartsOnlyWhereTheNumberRunsIt) {
  Engine engine(WithRent(), LeadSettings());  // --default_flow lead
  EXPECT_EQ(engine.Advance({}, On({"lead", "listing"}, Text("Hello", kT0)), kT0).state.flow,
            "lead");
  // The deployment's default on a number that does not run it: the number's menu.
  Transition menu = engine.Advance({}, On({"listing", "rent"}, Text("Hello", kT0)), kT0);
  EXPECT_TRUE(menu.state.flow.empty());
  EXPECT_EQ(menu.note, "menu");
  // The number's own default, one of its flows, wins; one it does not run is never started.
  Event rent = On({"listing", "rent"}, Text("Hello", kT0));
  rent.number_default_flow = "rent";
  EXPECT_EQ(engine.Advance({}, rent, kT0).state.flow, "rent");
  Event stray = On({"listing"}, Text("Hello", kT0));
  stray.number_default_flow = "rent";
  EXPECT_TRUE(engine.Advance({}, stray, kT0).state.flow.empty());
  // On a number that runs the lead flow alone, SELL is an enquiry like any other text.
  EXPECT_EQ(engine.Advance({}, On({"lead"}, Text("SELL", kT0)), kT0).state.flow, "lead");
}

// A flow asked for by name in the middle of an enquiry takes over only where the number runs it;
// a run already going goes on to its end when the number's flows change under it.
TEST(NumberFlows, ASwitchByNameNeedsTheFlowOnTheNumberAndARunGoingGoesOn) {
  Chat lead_only(LeadSettings());
  lead_only.Send(On({"lead"}, Text("Hello", kT0)));
  ASSERT_EQ(lead_only.state.flow, "lead");
  Transition stay = lead_only.Send(On({"lead"}, Text("SELL", kT0 + 5)));
  EXPECT_EQ(lead_only.state.flow, "lead");
  ASSERT_EQ(Replies(stay).size(), 1u);
  EXPECT_EQ(Replies(stay)[0].find("list your item"), std::string::npos) << Replies(stay)[0];
  Chat both(LeadSettings());
  both.Send(On({"lead", "listing"}, Text("Hello", kT0)));
  Transition moved = both.Send(On({"lead", "listing"}, Text("SELL", kT0 + 5)));
  EXPECT_EQ(both.state.flow, "listing");
  EXPECT_EQ(moved.note, "started");
  // A listing under way when its number stopped running it: photos, DONE, as before.
  Chat going;
  going.ToPhotos();
  going.Send(On({"lead"}, Image("m1", kT0 + 10)));
  EXPECT_EQ(going.state.flow, "listing");
  EXPECT_EQ(going.Photos(), 1u);
  going.Send(On({"lead"}, Text("DONE", kT0 + 11)));
  EXPECT_EQ(going.state.flow, "listing");
  EXPECT_NE(going.state.step, "photos");
}

// The lead flow rolled out as "lead_v2": its variant differs by greeting; the rest fall back to
// "lead".
FlowSet RolledOut(int percent, const std::string& allow) {
  FlowSet set = Shipped();
  const std::string v2 = EditedFlow(
      "lead.json",
      {{R"("name": "lead")",
        R"("name": "lead_v2", "fallback": "lead", "rollout": {"enabled": true, "percent": )" +
            std::to_string(percent) + R"(, "allow": [)" + allow + "]}"},
       {"I'm ABCai", "I'm ABCai v2"}});
  Status st = set.Add(v2, "lead_v2.json", Schemas());
  EXPECT_TRUE(st.ok()) << st.ToString();
  return set;
}

std::string Variant(const Engine& engine, const std::string& person,
                    const std::string& phone = "") {
  Event e = Text("Hello", kT0);
  e.person = person;
  e.ids = {phone};
  Transition t = engine.Advance(ConversationState{}, e, kT0);
  return t.state.flow;
}

TEST(Rollout, TheAllowListAndAStableHashPickTheVariantAndAReloadChangesItForNewRunsOnly) {
  EngineSettings settings = LeadSettings();
  settings.default_flow = "lead_v2";
  Engine engine(RolledOut(30, R"("15550001111")"), settings);
  // The same split every run: the hash is FNV-1a of "lead_v2/<key>", modulo 100.
  int in = 0;
  std::vector<std::string> first;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "106540352242922:1555000" + std::to_string(1000 + i);
    const bool v2 = Variant(engine, key) == "lead_v2";
    EXPECT_EQ(v2, RolloutBucket("lead_v2", key) < 30) << key;
    in += v2;
    if (v2 && first.size() < 3) first.push_back(key);
  }
  EXPECT_EQ(in, 283);  // of 1000 at 30 % (checked against a Python implementation)
  EXPECT_EQ(first,
            (std::vector<std::string>{"106540352242922:15550001001", "106540352242922:15550001003",
                                      "106540352242922:15550001004"}));
  EXPECT_EQ(RolloutBucket("lead_v2", "106540352242922:15550001000"), 62);
  // The allow list wins over the hash, by phone or by BSUID.
  EXPECT_EQ(Variant(engine, "106540352242922:15550001000"), "lead");
  EXPECT_EQ(Variant(engine, "106540352242922:15550001000", "15550001111"), "lead_v2");
  // A run that started on v2 stays there when the rollout is withdrawn; new runs fall back.
  Event hello = Text("Hello", kT0);
  hello.person = "106540352242922:15550001001";
  ConversationState running = engine.Advance(ConversationState{}, hello, kT0).state;
  ASSERT_EQ(running.flow, "lead_v2");
  engine.Reload(RolledOut(0, ""));
  Transition next = engine.Advance(running, Text("golden visa", kT0 + 5), kT0 + 5);
  EXPECT_EQ(next.state.flow, "lead_v2");
  EXPECT_EQ(next.state.step, "name");
  EXPECT_EQ(Variant(engine, "106540352242922:15550001001"), "lead");
  EXPECT_EQ(Variant(engine, "106540352242922:15550001000", "15550001111"), "lead");
  engine.Reload(RolledOut(100, ""));
  EXPECT_EQ(Variant(engine, "106540352242922:15550001000"), "lead_v2");
}

TEST(Rollout, WithoutAFallbackThoseOutsideGetTheMenuAndABadFallbackIsRefused) {
  FlowSet set = Shipped();
  std::string json = test::ReadFile(test::SourcePath("deploy/flows/listing.json"));
  json.replace(json.find(R"("name": "listing")"), 17,
               R"("name": "listing2", "rollout": {"enabled": true, "percent": 0})");
  json.replace(json.find(R"("SELL")"), 6, R"("SELL2")");
  ASSERT_TRUE(set.Add(json, "listing2.json", Schemas()).ok());
  Engine engine(set, EngineSettings{});
  Transition t = engine.Advance(ConversationState{}, Text("SELL2", kT0), kT0);
  EXPECT_TRUE(t.state.flow.empty());
  EXPECT_EQ(t.note, "menu_not_rolled_out");
  char tmpl[] = "/tmp/convoy-flows-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/a.json")
      << R"({"schema":"flow","version":1,"name":"a","description":"d","triggers":["A"],"fallback":"nope","start":"x","steps":[{"id":"x","kind":"complete","prompt":"p"}]})";
  auto bad = FlowSet::LoadDir(dir, Schemas());
  std::remove((dir + "/a.json").c_str());
  rmdir(dir.c_str());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/fallback: no flow 'nope'"), std::string::npos)
      << bad.status().ToString();
}

// --- the lead flow with an extractor (an AI endpoint through outbound) ---

FlowSet WithExtractor() {
  FlowSet set;
  for (const char* f : {"listing.json", "checklist.json"}) {
    EXPECT_TRUE(
        set.Add(test::ReadFile(test::SourcePath(std::string("deploy/flows/") + f)), f, Schemas())
            .ok());
  }
  std::string lead = test::ReadFile(test::SourcePath("deploy/flows/lead.json"));
  const std::string marker = R"("default": true)";
  lead.replace(lead.find(marker), marker.size(), marker + R"(, "extractor": "assistant")");
  Status st = set.Add(lead, "lead.json", Schemas());
  EXPECT_TRUE(st.ok()) << st.ToString();
  return set;
}

struct Assisted {
  Assisted() : engine(WithExtractor(), LeadSettings()) {}
  Transition Send(const Event& e) {
    Transition t = engine.Advance(state, e, now += 1);
    state = t.state;
    return t;
  }
  Transition Say(const std::string& text) {
    Event e = Text(text, at += 5);
    e.id = "conv:wamid." + std::to_string(at);
    return Send(e);
  }
  Transition Answer(const std::string& request, std::map<std::string, std::string> fields,
                    const std::string& error = "") {
    Event e;
    e.kind = Event::Kind::kExtracted;
    e.result_id = request;
    e.fields = std::move(fields);
    e.reason = error;
    return Send(e);
  }
  Engine engine;
  ConversationState state;
  int64_t at = kT0, now = kT0 + 1000;
};

const Effect* Find(const Transition& t, Effect::Kind kind) {
  for (const auto& e : t.effects) {
    if (e.kind == kind) return &e;
  }
  return nullptr;
}

TEST(Extractor, WhatTheRulesMissIsAskedOfTheExtractorAndItsAnswerSkipsWhatItFound) {
  Assisted c;
  c.Say("Hello");
  Transition asked = c.Say("we would like to open a small trading firm, I'm Omar Khan");
  EXPECT_TRUE(Replies(asked).empty()) << "no reply while the extractor is asked";
  EXPECT_EQ(asked.note, "extracting");
  const Effect* e = Find(asked, Effect::Kind::kExtract);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->extractor, "assistant");
  EXPECT_EQ(e->result.id, c.state.extracting);
  std::vector<std::string> names;
  for (const auto& f : e->extract) names.push_back(f.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"service", "name", "nationality", "email", "best_time"}));
  EXPECT_NE(std::find(e->extract[0].values.begin(), e->extract[0].values.end(), "company setup"),
            e->extract[0].values.end())
      << "the service is one of the keyword table's values";
  const Effect* due = Find(asked, Effect::Kind::kResultDue);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(due->delay_ms, 25000) << "the backstop: the timeout (20 s) and 5 s";
  // Its answer: the service (in any case) and the name; a nationality that is not one is dropped.
  Transition got =
      c.Answer(c.state.extracting,
               {{"service", "Company Setup"}, {"name", "omar khan"}, {"nationality", "42"}});
  EXPECT_EQ(got.note, "extracted");
  ASSERT_EQ(Replies(got).size(), 1u);
  EXPECT_EQ(Replies(got)[0], "What is your nationality?");
  EXPECT_EQ(c.state.fields.at("service"), "company setup");
  EXPECT_TRUE(c.state.extracting.empty());
  // The step moved on as of the message (WhatsApp's clock), not this server's: the next answer,
  // sent seconds later by WhatsApp's clock, is taken (not superseded as older than the step).
  EXPECT_LT(c.at, c.now) << "the server's clock is ahead here";
  EXPECT_EQ(Replies(c.Say("Pakistani")),
            std::vector<std::string>{
                "What is your email address, and when is the best time to call you?"});
  // The same answer again (redelivered) changes nothing.
  Transition again = c.Answer(e->result.id, {{"service", "golden visa"}});
  EXPECT_EQ(again.note, "stale_extraction");
  EXPECT_TRUE(again.effects.empty());
  EXPECT_EQ(c.state.fields.at("service"), "company setup");
}

TEST(Extractor, NothingFoundAFailureOrTheTimeoutAsksThePersonAndALateAnswerChangesNothing) {
  const std::string sorry =
      "Sorry, I didn't quite catch that. Could you tell me a little more about what you need?";
  Assisted found_nothing;
  found_nothing.Say("Hello");
  found_nothing.Say("something vague");
  Transition t = found_nothing.Answer(found_nothing.state.extracting, {});
  EXPECT_EQ(t.note, "extractor_found_nothing");
  ASSERT_EQ(Replies(t).size(), 1u);
  EXPECT_EQ(Replies(t)[0], sorry);
  EXPECT_EQ(found_nothing.state.misses, 1);

  Assisted failed;
  failed.Say("Hello");
  failed.Say("something vague");
  t = failed.Answer(failed.state.extracting, {}, "the extractor answered HTTP 401");
  EXPECT_EQ(t.note, "extractor_failed");
  EXPECT_EQ(Replies(t), std::vector<std::string>{sorry});

  Assisted slow;
  slow.Say("Hello");
  slow.Say("something vague");
  const std::string request = slow.state.extracting;
  Event due;
  due.kind = Event::Kind::kResultDue;
  due.result_id = "extract:" + request;
  t = slow.Send(due);
  EXPECT_EQ(t.note, "extractor_failed");
  EXPECT_EQ(Replies(t), std::vector<std::string>{sorry});
  EXPECT_TRUE(slow.Answer(request, {{"service", "golden visa"}}).effects.empty())
      << "too late: the person was asked";
  EXPECT_EQ(slow.state.fields.count("service"), 0u);
  // A second miss (the extractor finds nothing again): a person takes over, as without one.
  slow.Say("still vague");
  t = slow.Answer(slow.state.extracting, {});
  EXPECT_EQ(
      Replies(t),
      std::vector<std::string>{
          "Thank you for your patience. A member of our team will reply to you here shortly."});
  ASSERT_NE(Find(t, Effect::Kind::kDeliver), nullptr);
  EXPECT_EQ(Find(t, Effect::Kind::kDeliver)->result.type, "lead.handoff");

  // The person writes again before the answer: the new message is handled, the old answer is stale.
  Assisted eager;
  eager.Say("Hello");
  eager.Say("something vague");
  const std::string old = eager.state.extracting;
  Transition next = eager.Say("golden visa");
  EXPECT_EQ(Replies(next), std::vector<std::string>{"May I know your full name, please?"});
  EXPECT_EQ(eager.Answer(old, {{"service", "work permit"}}).note, "stale_extraction");
  EXPECT_EQ(eager.state.fields.at("service"), "golden visa");
  // Rules first: what they find never goes to the extractor.
  Assisted rules;
  rules.Say("Hello");
  EXPECT_EQ(Find(rules.Say("a family visa please"), Effect::Kind::kExtract), nullptr);
}

// --- a run's inactivity timeout (conversations.run_expires_at, judged by the processor and the
// sweeper) ---

Event RunExpired(int64_t due_at) {
  Event e;
  e.kind = Event::Kind::kRunExpired;
  e.due_at = due_at;
  return e;
}

// Weeks after "What is your name?", "I want a golden visa" is an enquiry, not a name: the run
// ended at its timeout (flow.expired, nothing said) and the message starts a new one.
TEST(RunTimeout, AnExpiredRunEndsSilentlyAndTheNextMessageStartsFresh) {
  Lead c;
  c.Say("Hello");
  EXPECT_EQ(c.Say("a family visa"), "May I know your full name, please?");
  const int64_t due = c.at + 86400;
  Transition expired = c.Send(RunExpired(due), due + 30);
  EXPECT_EQ(expired.note, "expired");
  ASSERT_EQ(expired.effects.size(), 1u) << "nothing is said: flow.expired alone";
  const Effect& e = expired.effects[0];
  EXPECT_EQ(e.kind, Effect::Kind::kFlowExpired);
  EXPECT_EQ(e.flow, "lead");
  EXPECT_EQ(e.outcome, "name") << "the step the person stopped at";
  EXPECT_EQ(e.last_activity_at, c.at);
  EXPECT_FALSE(e.resumed);
  EXPECT_TRUE(c.state.flow.empty());
  EXPECT_TRUE(c.state.fields.empty()) << "the run's fields went with it";
  EXPECT_TRUE(DecodeState(EncodeState(c.state)).flow.empty());
  c.at = due + 3 * 7 * 86400;
  EXPECT_EQ(c.Say("I want a golden visa"), "May I know your full name, please?")
      << "no greeting again";
  EXPECT_EQ(c.last.note, "started");
  EXPECT_EQ(c.state.fields.at("service"), "golden visa");
  EXPECT_EQ(c.state.fields.count("name"), 0u);
  EXPECT_TRUE(c.state.expired_run.empty()) << "the ended run is dropped once a later message came";
  // A second expiry of a run that ended meanwhile changes nothing.
  Chat idle;
  Transition none = idle.Send(RunExpired(kT0));
  EXPECT_TRUE(none.effects.empty());
  EXPECT_EQ(none.note, "recorded");
}

// A message sent before the due time and delivered after the sweeper ended the run (an outage, a
// backlog) is still the run's: it answers the step the run was on. One sent after starts fresh.
TEST(RunTimeout, AMessageSentBeforeTheDueTimeAndDeliveredLateStillAnswersTheRun) {
  Chat c;
  c.Send(Text("SELL", kT0));
  ASSERT_EQ(c.state.step, "email");
  const int64_t due = kT0 + 86400;
  c.Send(RunExpired(due), due + 600);
  ASSERT_TRUE(c.state.flow.empty());
  c.state = DecodeState(EncodeState(c.state));  // through the row, as between deliveries
  Transition late = c.Send(Text("kerry@example.com", due - 5));
  EXPECT_EQ(c.state.flow, "listing");
  EXPECT_EQ(c.state.step, "description");
  EXPECT_EQ(c.state.fields.at("email"), "kerry@example.com");
  EXPECT_EQ(late.note, "answered");
  // The same run expired again; this time the answer was sent after the due time.
  Chat d;
  d.Send(Text("SELL", kT0));
  d.Send(RunExpired(due), due + 600);
  Transition fresh = d.Send(Text("kerry@example.com", due));
  EXPECT_TRUE(d.state.flow.empty());
  EXPECT_EQ(fresh.note, "menu");
}

// on_timeout resume: the run stays where it was and only flow.expired is emitted; the person's
// next message answers its step.
TEST(RunTimeout, AFlowThatResumesKeepsItsRunAndOnlyReportsIt) {
  FlowSet set;
  std::string listing = test::ReadFile(test::SourcePath("deploy/flows/listing.json"));
  const std::string name = R"("name": "listing",)";
  ASSERT_NE(listing.find(name), std::string::npos);
  listing.replace(listing.find(name), name.size(),
                  name + R"( "inactivity_timeout_seconds": 3600, "on_timeout": "resume",)");
  ASSERT_TRUE(set.Add(listing, "listing.json", Schemas()).ok());
  Engine engine(set, {});
  ConversationState s = engine.Advance({}, Text("SELL", kT0), kT0).state;
  EXPECT_EQ(engine.RunTimeoutSeconds(s), 3600) << "the flow's own, not the default";
  Transition t = engine.Advance(s, RunExpired(kT0 + 3600), kT0 + 3700);
  EXPECT_EQ(t.note, "expired_kept");
  ASSERT_EQ(t.effects.size(), 1u);
  EXPECT_EQ(t.effects[0].kind, Effect::Kind::kFlowExpired);
  EXPECT_TRUE(t.effects[0].resumed);
  EXPECT_EQ(EncodeState(t.state), EncodeState(s)) << "the run is as it was";
  Transition next = engine.Advance(t.state, Text("kerry@example.com", kT0 + 9000), kT0 + 9000);
  EXPECT_EQ(next.state.step, "description");
}

TEST(RunTimeout, TheTimeoutIsTheFlowsOwnElseTheDefaultAndAChecklistHasNone) {
  EngineSettings settings;
  EXPECT_EQ(settings.inactivity_timeout_seconds, 86400) << "24 h unless configured";
  settings.inactivity_timeout_seconds = 600;
  Chat c(settings);
  EXPECT_EQ(c.engine.RunTimeoutSeconds(c.state), 0) << "no run";
  c.Send(Text("SELL", kT0));
  EXPECT_EQ(c.engine.RunTimeoutSeconds(c.state), 600);
  // A checklist ends by its assignment's TTL (assignment.expired), never by this clock.
  Chat op;
  op.Send(Text("hello", kT0));
  op.Send(Assigned(LineQa()), kT0 + 10);
  ASSERT_EQ(op.state.flow, "checklist");
  EXPECT_EQ(op.engine.RunTimeoutSeconds(op.state), 0);
  const std::string before = EncodeState(op.state);
  Transition t = op.Send(RunExpired(kT0 + 20), kT0 + 30);
  EXPECT_TRUE(t.effects.empty());
  EXPECT_EQ(EncodeState(op.state), before);
}

TEST(FlowLoader, AFlowNamesItsOwnInactivityTimeoutAndWhatHappensAtIt) {
  FlowSet ok;
  const std::string complete = R"([{"id":"a","kind":"complete","prompt":"p"}])";
  ASSERT_TRUE(ok.Add(Minimal(complete, R"("inactivity_timeout_seconds":60,"on_timeout":"resume",)"),
                     "t.json", Schemas())
                  .ok());
  EXPECT_EQ(ok.Find("t")->inactivity_timeout_seconds, 60);
  EXPECT_TRUE(ok.Find("t")->resume_on_timeout);
  EXPECT_EQ(Shipped().Find("listing")->inactivity_timeout_seconds, 0)
      << "the default, --inactivity_timeout_seconds";
  EXPECT_FALSE(Shipped().Find("lead")->resume_on_timeout);
}

}  // namespace
}  // namespace convoy::conversation
