#include "verify.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace convoy::media {
namespace {

std::string Photo(const std::string& name) {
  std::ifstream in(std::string(CONVOY_FIXTURES_DIR) + "/media/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Sha256, Base64AndHexNormalizeToTheSameHex) {
  auto hex = NormalizeSha256("fa8aa1abdbfbb5186a5bf6e2b21a846751414f2f598718e13d40e644b0fec4c3");
  auto b64 = NormalizeSha256("+oqhq9v7tRhqW/bishqEZ1FBTy9ZhxjhPUDmRLD+xMM=");
  ASSERT_TRUE(hex && b64);
  EXPECT_EQ(*hex, *b64);
  EXPECT_EQ(*hex, Sha256Hex(Photo("photo1.jpg")));
  EXPECT_FALSE(NormalizeSha256("xyz"));
  EXPECT_FALSE(NormalizeSha256(std::string(64, 'g')));
}

TEST(VerifyMedia, AcceptsTheFixturePhotos) {
  for (auto [name, mime] : {std::pair{"photo1.jpg", "image/jpeg"}, {"photo4.png", "image/png"}}) {
    std::string bytes = Photo(name);
    EXPECT_TRUE(VerifyMedia(bytes, mime, Sha256Hex(bytes), 5 << 20).ok()) << name;
  }
}

TEST(VerifyMedia, RejectsWithAReason) {
  std::string jpg = Photo("photo1.jpg");
  EXPECT_EQ(VerifyMedia(jpg, "image/jpeg", Sha256Hex(jpg), 100).code(), Code::kTooLarge);
  EXPECT_NE(VerifyMedia(jpg, "image/png", Sha256Hex(jpg), 5 << 20).message().find("does not look like"), std::string::npos);
  EXPECT_NE(VerifyMedia(jpg, "application/x-sh", Sha256Hex(jpg), 5 << 20).message().find("not allowed"), std::string::npos);
  EXPECT_NE(VerifyMedia(jpg, "image/jpeg", Sha256Hex("other"), 5 << 20).message().find("mismatch"), std::string::npos);
}

}  // namespace
}  // namespace convoy::media
