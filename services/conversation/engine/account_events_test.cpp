// Unit: what each account_update Meta sends means for sending (the pywa corpus, Meta's shapes).
#include "engine/account_events.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>

#include "convoy/rapidjson_util.h"
#include "testsupport.h"

namespace convoy::conversation {
namespace {

AccountDecision DecideFixture(const std::string& file) {
  rapidjson::Document doc;
  doc.Parse(test::ReadFile(test::FixturePath("webhooks/pywa/" + file)).c_str());
  EXPECT_FALSE(doc.HasParseError()) << file;
  return DecideAccountUpdate(JsonMember(doc["entry"][0]["changes"][0], "value"));
}

TEST(AccountDecisions, EveryFixtureHasItsActionAndAReasonNamingTheEvent) {
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"account_offboarded", {"paused", "account_update ACCOUNT_OFFBOARDED"}},
      {"account_deleted", {"paused", "account_update ACCOUNT_DELETED"}},
      {"partner_removed", {"paused", "account_update PARTNER_REMOVED"}},
      {"partner_removed_wa_app_disconnection",
       {"paused", "account_update PARTNER_REMOVED: PRIMARY_INACTIVITY"}},
      {"account_restriction",
       {"paused",
        "account_update ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING, "
        "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}},
      // The fixture reinstates: never a resume, and nothing to pause.
      {"account_disabled",
       {"not_pausing", "account_update DISABLED_UPDATE: REINSTATE April 17, 2025"}},
      {"account_violation", {"not_pausing", "account_update ACCOUNT_VIOLATION: ADULT"}},
      {"account_reconnected", {"not_pausing", "account_update ACCOUNT_RECONNECTED"}},
      {"ad_account_linked", {"informational", "account_update AD_ACCOUNT_LINKED"}},
      {"authentication_international_eligibility",
       {"informational", "account_update AUTH_INTL_PRICE_ELIGIBILITY_UPDATE"}},
      {"mm_api_for_wa_terms_of_service", {"informational", "account_update MM_LITE_TERMS_SIGNED"}},
      {"partner_added", {"informational", "account_update PARTNER_ADDED"}},
      {"partner_app_installed", {"informational", "account_update PARTNER_APP_INSTALLED"}},
      {"partner_app_uninstalled", {"informational", "account_update PARTNER_APP_UNINSTALLED"}},
      {"partner_led_business_verification_status",
       {"informational", "account_update PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE"}},
      {"pricing_tiering_update",
       {"informational", "account_update VOLUME_BASED_PRICING_TIER_UPDATE"}},
      {"primary_business_location_set",
       {"informational", "account_update BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE"}},
  };
  size_t corpus = 0;
  for (const auto& row : test::PywaIndex()) corpus += row.field == "account_update";
  EXPECT_EQ(corpus, expected.size()) << "an account_update fixture without an expectation";
  for (const auto& [name, want] : expected) {
    AccountDecision got = DecideFixture("account_update__" + name + ".json");
    EXPECT_EQ(got.action, want.first) << name;
    EXPECT_EQ(got.reason, want.second) << name;
  }
}

// What the fixtures do not show: a disable that is in force pauses; a restriction on adding
// numbers alone leaves sending as it was.
TEST(AccountDecisions, ADisableInForcePausesARestrictionOnAddingNumbersDoesNot) {
  rapidjson::Document d;
  d.Parse(
      R"({"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE","waba_ban_date":"May 2, 2026"}})");
  EXPECT_EQ(DecideAccountUpdate(d).action, "paused");
  EXPECT_EQ(DecideAccountUpdate(d).reason, "account_update DISABLED_UPDATE: DISABLE May 2, 2026");
  d.Parse(R"({"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"SCHEDULE_FOR_DISABLE"}})");
  EXPECT_EQ(DecideAccountUpdate(d).action, "not_pausing");
  d.Parse(
      R"({"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]})");
  EXPECT_EQ(DecideAccountUpdate(d).action, "not_pausing");
  d.Parse(
      R"({"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_CUSTOMER_INITIATED_MESSAGING"}]})");
  EXPECT_EQ(DecideAccountUpdate(d).action, "paused");
}

}  // namespace
}  // namespace convoy::conversation
