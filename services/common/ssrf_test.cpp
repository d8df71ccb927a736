// The SSRF guard: which addresses are internal, and a URL pinned to the address that was checked.
#include "convoy/ssrf.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

TEST(Ssrf, InternalAddressesAreRecognisedInBothFamilies) {
  for (const char* ip :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "ff02::1",
        "224.0.0.1", "not-an-ip",
        // IPv4 carried in IPv6: compatible, NAT64, 6to4 with an internal address inside
        "::127.0.0.1", "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1",
        "2002:a9fe:a9fe::1", "2002:7f00:1::", "64:ff9b:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1", "2001:db8::1", "fec0::1", "febf::1"}) {
    EXPECT_TRUE(IsInternalAddress(ip)) << ip;
  }
  for (const char* ip : {"8.8.8.8", "172.32.0.1", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8",
                         "64:ff9b::808:808", "2002:808:808::1", "2a03:2880:f003::1"}) {
    EXPECT_FALSE(IsInternalAddress(ip)) << ip;
  }
}

TEST(Ssrf, ANameThatResolvesInsideIsRefusedNamingTheAddress) {
  auto local = ResolvePublic("http://localhost:8080/hook");
  ASSERT_FALSE(local.ok());
  EXPECT_EQ(local.status().code(), Code::kRejected);
  EXPECT_NE(local.status().message().find("localhost resolves to"), std::string::npos)
      << local.status().ToString();
  EXPECT_EQ(ResolvePublic("http://169.254.169.254/latest").status().code(), Code::kRejected);
  EXPECT_EQ(ResolvePublic("http://[::ffff:10.0.0.1]/").status().code(), Code::kRejected);
  EXPECT_EQ(ResolvePublic("http://user:pw@example.com/").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ResolvePublic("not a url").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ResolvePublic("http://no-such-host.invalid/").status().code(), Code::kUnavailable);
  EXPECT_TRUE(CheckDestination("http://127.0.0.1:9/", true).ok())
      << "allowed private: only the form is checked";
  EXPECT_FALSE(CheckDestination("http://127.0.0.1:9/", false).ok());
}

TEST(Ssrf, APinnedUrlGoesToTheCheckedAddressAndKeepsTheName) {
  auto p = PinToAddress("https://shop.example.com/admin/api/graphql.json?x=1", "93.184.216.34");
  EXPECT_EQ(p.url, "https://93.184.216.34/admin/api/graphql.json?x=1");
  EXPECT_EQ(p.host_header, "shop.example.com");
  p = PinToAddress("https://shop.example.com:8443/in", "93.184.216.34");
  EXPECT_EQ(p.url, "https://93.184.216.34:8443/in");
  EXPECT_EQ(p.host_header, "shop.example.com")
      << "https: the bare name, which SNI and the certificate check use";
  p = PinToAddress("http://hooks.example.com:8080/in", "2606:2800:220:1::1");
  EXPECT_EQ(p.url, "http://[2606:2800:220:1::1]:8080/in");
  EXPECT_EQ(p.host_header, "hooks.example.com:8080");
  p = PinToAddress("https://[2001:4860::1]:81/x", "2001:4860::1");
  EXPECT_EQ(p.url, "https://[2001:4860::1]:81/x") << "already an address";
  EXPECT_EQ(p.host_header, "");
  p = PinToAddress("http://8.8.8.8/x", "8.8.8.8");
  EXPECT_EQ(p.url, "http://8.8.8.8/x");
  EXPECT_EQ(p.host_header, "");
}

TEST(Ssrf, ARedactedUrlKeepsNeitherCredentialsNorPathNorQuery) {
  EXPECT_EQ(RedactUrl("https://user:pw@hooks.example.com:8443/services/T0/B0/secret?token=x"),
            "https://hooks.example.com:8443/...");
  EXPECT_EQ(RedactUrl("http://example.com"), "http://example.com");
  EXPECT_EQ(RedactUrl("garbage"), "(not a URL)");
}

}  // namespace
}  // namespace convoy
