#include "convoy/status.h"

#include <gtest/gtest.h>

#include "convoy/amqp.h"

namespace convoy {
namespace {

// The ack contract, exhaustively: transient → retry, everything else → dead letter.
TEST(StatusMapping, EveryCodeMapsToOneDisposition) {
  EXPECT_EQ(DispositionFor(Status::Ok()).kind, Disposition::Kind::kAck);
  const Code transient[] = {Code::kUnavailable, Code::kTimeout};
  for (Code c : transient) {
    EXPECT_TRUE(IsTransient(c)) << CodeName(c);
    EXPECT_EQ(DispositionFor(Status(c, "x")).kind, Disposition::Kind::kRetry) << CodeName(c);
  }
  const Code permanent[] = {Code::kInvalidArgument, Code::kUnauthenticated, Code::kNotFound,
                            Code::kTooLarge,        Code::kRejected,        Code::kInternal};
  for (Code c : permanent) {
    EXPECT_FALSE(IsTransient(c)) << CodeName(c);
    auto d = DispositionFor(Status(c, "why"));
    EXPECT_EQ(d.kind, Disposition::Kind::kDeadLetter) << CodeName(c);
    EXPECT_NE(d.reason.find("why"), std::string::npos);
  }
}

TEST(StatusMapping, PublishOutcomes) {
  EXPECT_TRUE(PublishOutcomeStatus(PublishOutcome::kConfirmed).ok());
  EXPECT_TRUE(IsTransient(PublishOutcomeStatus(PublishOutcome::kNacked).code()));
  EXPECT_TRUE(IsTransient(PublishOutcomeStatus(PublishOutcome::kUnavailable).code()));
  EXPECT_TRUE(IsTransient(PublishOutcomeStatus(PublishOutcome::kOverloaded).code()));
  EXPECT_FALSE(IsTransient(PublishOutcomeStatus(PublishOutcome::kReturned).code()));
  EXPECT_FALSE(IsTransient(PublishOutcomeStatus(PublishOutcome::kRejected).code()));
}

TEST(Result, CarriesValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status(Code::kNotFound, "gone"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().ToString(), "not_found: gone");
}

}  // namespace
}  // namespace convoy
