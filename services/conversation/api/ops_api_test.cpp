// Unit: what a viewer reads of a parked message's payload (ops_api.h MaskPayload).
#include "api/ops_api.h"

#include <gtest/gtest.h>

namespace convoy::conversation {
namespace {

TEST(OpsMaskPayload, EveryStringIsMaskedAndTheShapeAndKeysStay) {
  const std::string masked = MaskPayload(
      R"({"to":"971500000211","text":{"body":"Hi Ana, call me on 0501234567"},"n":3,"ok":true,"list":["secret words"]})");
  EXPECT_EQ(masked.find("971500000211"), std::string::npos) << masked;
  EXPECT_EQ(masked.find("Ana"), std::string::npos) << masked;
  EXPECT_EQ(masked.find("0501234567"), std::string::npos) << masked;
  EXPECT_EQ(masked.find("secret"), std::string::npos) << masked;
  EXPECT_NE(masked.find(R"("to":"********0211")"), std::string::npos)
      << "the last 4 stay, as logs show them: " << masked;
  EXPECT_NE(masked.find(R"("text":{"body":)"), std::string::npos) << masked;
  EXPECT_NE(masked.find(R"("n":3,"ok":true)"), std::string::npos) << masked;
}

TEST(OpsMaskPayload, ABodyThatIsNotJsonIsMaskedWhole) {
  EXPECT_EQ(MaskPayload("poison 971500000211"), "****** ********0211");
}

}  // namespace
}  // namespace convoy::conversation
