#include "verify.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fetcher.h"

namespace convoy::media {
namespace {

std::string Photo(const std::string& name) {
  std::ifstream in(std::string(CONVOY_FIXTURES_DIR) + "/media/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status Verify(const std::string& bytes, const std::string& mime, const std::string& expected,
              const SizeLimits& limits = {}) {
  return VerifyMedia(mime, bytes.size(), std::string_view(bytes).substr(0, 64), Sha256Hex(bytes),
                     expected, limits);
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
  for (auto [name, mime] : {std::pair{"photo1.jpg", "image/jpeg"},
                            {"photo2.jpg", "image/jpeg"},
                            {"photo3.jpg", "image/jpeg"},
                            {"photo4.png", "image/png"}}) {
    std::string bytes = Photo(name);
    EXPECT_TRUE(Verify(bytes, mime, Sha256Hex(bytes)).ok()) << name;
  }
}

TEST(VerifyMedia, RejectsWithAReason) {
  std::string jpg = Photo("photo1.jpg");
  SizeLimits tiny;
  tiny.image = 100;
  Status big = Verify(jpg, "image/jpeg", Sha256Hex(jpg), tiny);
  EXPECT_EQ(big.code(), Code::kTooLarge);
  EXPECT_EQ(big.message(), "image of 2709 bytes is over the limit of 100");
  EXPECT_EQ(Verify(jpg, "image/png", Sha256Hex(jpg)).message(),
            "content does not look like image/png");
  EXPECT_EQ(Verify(jpg, "application/x-sh", Sha256Hex(jpg)).message(),
            "type not allowed: application/x-sh");
  EXPECT_NE(Verify(jpg, "image/jpeg", Sha256Hex("other")).message().find("sha256 mismatch"),
            std::string::npos);
  EXPECT_NE(Verify(jpg, "image/jpeg", "not-a-hash").message().find("malformed sha256"),
            std::string::npos);
}

// Each refusal gets the code conversation turns into plain words (media.failed's "code"):
// what the user hears depends on it, never on the reason's text.
TEST(VerifyMedia, EachRefusalHasTheCodeThePersonIsToldBy) {
  std::string jpg = Photo("photo1.jpg");
  SizeLimits tiny;
  tiny.image = 100;
  EXPECT_EQ(FailureCode(Verify(jpg, "image/jpeg", Sha256Hex(jpg), tiny)), "too_large");
  EXPECT_EQ(FailureCode(Verify(jpg, "image/png", Sha256Hex(jpg))), "not_a_photo");
  EXPECT_EQ(FailureCode(Verify(jpg, "application/x-sh", Sha256Hex(jpg))), "not_a_photo");
  EXPECT_EQ(FailureCode(Verify(jpg, "image/jpeg", Sha256Hex("other"))), "damaged");
  EXPECT_EQ(FailureCode(Verify(jpg, "image/jpeg", "not-a-hash")), "damaged");
  EXPECT_EQ(FailureCode(
                Status(Code::kNotFound, "media metadata: HTTP 404 (unknown or expired media id)")),
            "expired");
  EXPECT_EQ(FailureCode(Status(Code::kInvalidArgument,
                               "the webhook said image/jpeg, the metadata says image/png")),
            "not_a_photo");
  EXPECT_EQ(FailureCode(Status(Code::kInvalidArgument, "media metadata incomplete")), "damaged");
}

// A "document" whose bytes are a web page or a program is refused, whatever the webhook called it;
// the reason (for the audit, never the person) says what it is, and the code is the one the person
// is told by in plain words.
TEST(VerifyMedia, ADocumentThatIsAPageOrAProgramIsRefusedAndNamed) {
  const std::string pdf = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
  EXPECT_TRUE(Verify(pdf, "application/pdf", Sha256Hex(pdf)).ok());
  for (auto [bytes, what] : {std::pair<std::string, std::string>{
                                 "<!DOCTYPE html><html><script>x()</script>", "an HTML page"},
                             {"\xEF\xBB\xBF  \n<HTML><body>", "an HTML page"},
                             {"<svg onload=alert(1)>", "an HTML page"},
                             {std::string("\x7F"
                                          "ELF\x02\x01\x01\0",
                                          8),
                              "an ELF executable"},
                             {std::string("MZ\x90\0\x03\0\0\0", 8), "a Windows executable"},
                             {"#!/bin/sh\nrm -rf /\n", "a script"},
                             {std::string("PK\x03\x04\x14\0", 6), "a ZIP archive"}}) {
    Status s = Verify(bytes, "application/pdf", Sha256Hex(bytes));
    EXPECT_EQ(s.message(), "content does not look like application/pdf (it is " + what + ")")
        << what;
    EXPECT_EQ(FailureCode(s), "not_a_photo") << what;
  }
  EXPECT_EQ(Verify("plain text", "application/pdf", Sha256Hex("plain text")).message(),
            "content does not look like application/pdf")
      << "nothing known: no guess";
  EXPECT_EQ(HostileContent("#!AMR\n"), "") << "an AMR voice note is no script";
}

TEST(MediaTypes, KindsByTheNamesFlowsUse) {
  for (const char* name : {"image", "document", "video", "audio"}) {
    ASSERT_TRUE(KindFromName(name)) << name;
    EXPECT_STREQ(KindName(*KindFromName(name)), name);
  }
  EXPECT_FALSE(KindFromName("sticker"));
  EXPECT_FALSE(KindFromName("Image"));
  EXPECT_EQ(AllowedType("audio/ogg; codecs=opus")->extension, "ogg") << "a voice note";
  EXPECT_EQ(AllowedType("application/pdf")->kind, Kind::kDocument);
}

TEST(MediaTypes, EachKindHasItsLimitAndMagic) {
  SizeLimits limits;
  EXPECT_EQ(limits.For(AllowedType("image/jpeg")->kind), 5u << 20);
  EXPECT_EQ(limits.For(AllowedType("video/mp4")->kind), 16u << 20);
  EXPECT_EQ(limits.For(AllowedType("audio/ogg; codecs=opus")->kind), 16u << 20)
      << "parameters are ignored";
  EXPECT_EQ(limits.For(AllowedType("application/pdf")->kind), 100u << 20);
  EXPECT_FALSE(AllowedType("text/html"));
  EXPECT_FALSE(AllowedType("image/svg+xml")) << "svg can carry scripts";
  EXPECT_TRUE(MagicMatches(*AllowedType("video/mp4"), std::string("\0\0\0\x18"
                                                                  "ftypmp42",
                                                                  12)));
  EXPECT_TRUE(MagicMatches(*AllowedType("audio/ogg"), "OggS\0"));
  EXPECT_TRUE(MagicMatches(*AllowedType("application/pdf"), "%PDF-1.7"));
  EXPECT_FALSE(MagicMatches(*AllowedType("application/pdf"), "<html>"));
  EXPECT_FALSE(MagicMatches(*AllowedType("image/webp"), "RIFF"));
}

TEST(StoredNames, OnlyTheGeneratorsOwnPattern) {
  const std::string hash = Sha256Hex("x");
  EXPECT_TRUE(IsStoredName(hash + ".jpg"));
  EXPECT_TRUE(IsStoredName(hash + ".pdf"));
  for (const std::string& bad :
       {std::string("../etc/passwd"), hash + ".exe", hash + ".jpg/", hash.substr(1) + ".jpg",
        hash + "0.jpg", "/" + hash + ".jpg", std::string(".."), std::string(""), hash + ".JPG",
        hash.substr(0, 63) + "G.jpg", hash + "..jpg", hash + ".jpg.png"}) {
    EXPECT_FALSE(IsStoredName(bad)) << bad;
  }
  std::string with_nul = hash + ".jpg";
  with_nul.insert(10, 1, '\0');
  EXPECT_FALSE(IsStoredName(with_nul));
}

}  // namespace
}  // namespace convoy::media
