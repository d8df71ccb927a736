// Unit: the console's static files (console.h). Only the names the folder held at start are ever
// served, with their type, a strict Content-Security-Policy and nosniff; a hostile path is a 404
// and never reaches the file system; a symlink placed in the folder is not followed.
#include "api/console.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "testsupport.h"

namespace convoy::conversation {
namespace {

HttpRequest Get(const std::string& path, const std::string& method = "GET") {
  HttpRequest r;
  r.method = method;
  r.path = path;
  return r;
}

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/console_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/sub");
    Write("index.html", "<!doctype html><title>convoy</title>");
    Write("app.js", "export const x = 1;");
    Write("style.css", "body{}");
    Write(".hidden.js", "secret");
    Write("notes.md", "not a console type");
    Write("sub/inner.js", "nested");
    // Outside the folder: a secret a symlink inside points at.
    secret_ = dir_ + "-secret.txt";
    std::ofstream(secret_) << "top secret";
    std::filesystem::create_symlink(secret_, dir_ + "/link.txt");
    auto site = ConsoleSite::Load(dir_);
    ASSERT_TRUE(site.ok()) << site.status().ToString();
    site_ = std::make_unique<ConsoleSite>(std::move(*site));
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove(secret_);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_, secret_;
  std::unique_ptr<ConsoleSite> site_;
};

TEST_F(ConsoleTest, EachFileIsServedWithItsTypeAStrictPolicyAndRevalidation) {
  EXPECT_EQ(site_->size(), 3u)
      << "index.html, app.js, style.css: not the hidden, unknown, nested or linked ones";
  for (const auto& [path, type, body] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/console/", "text/html; charset=utf-8", "<!doctype html><title>convoy</title>"},
           {"/console/index.html", "text/html; charset=utf-8",
            "<!doctype html><title>convoy</title>"},
           {"/console/app.js", "text/javascript; charset=utf-8", "export const x = 1;"},
           {"/console/style.css", "text/css; charset=utf-8", "body{}"}}) {
    HttpResponse r = site_->Serve(Get(path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.content_type, type) << path;
    EXPECT_EQ(r.body, body) << path;
    const std::string csp = r.headers["Content-Security-Policy"];
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << "no inline script or eval: " << csp;
    EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(r.headers["Cache-Control"], "no-cache");
    ASSERT_FALSE(r.headers["ETag"].empty());
    // Unchanged since the browser's copy: 304 and no body.
    HttpRequest again = Get(path);
    again.headers["if-none-match"] = r.headers["ETag"];
    HttpResponse same = site_->Serve(again);
    EXPECT_EQ(same.status, 304) << path;
    EXPECT_TRUE(same.body.empty());
  }
  HttpResponse bare = site_->Serve(Get("/console"));
  EXPECT_EQ(bare.status, 301);
  EXPECT_EQ(bare.headers["Location"], "/console/");
  EXPECT_EQ(site_->Serve(Get("/console/", "POST")).status, 405);
}

TEST_F(ConsoleTest, AHostilePathIsNotFoundAndNothingOutsideTheNamesIsRead) {
  // The server hands handlers decoded paths: "%2e%2e%2f" arrives as "../".
  for (const std::string& path : std::vector<std::string>{
           "/console/../console/index.html", "/console/../../../../etc/passwd", "/console/..",
           "/console/./index.html", "/console//index.html", "/console/sub/inner.js",
           "/console/sub/", "/console/link.txt", "/console/.hidden.js", "/console/notes.md",
           "/console/index.html/", "/console/index.html/..", "/console/INDEX.HTML",
           std::string("/console/app.js\0x", 18), "/console\\app.js", "/consoleindex.html",
           "/console/" + secret_}) {
    HttpResponse r = site_->Serve(Get(path));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << path;
    EXPECT_EQ(r.headers["X-Content-Type-Options"], "nosniff") << path;
  }
}

// Photos of checklist answers are signed links to convoy-media (checklists_api.h): its origin, and
// no other, joins img-src; without a media URL, images come from this origin alone.
TEST_F(ConsoleTest, ImagesComeFromThisOriginAndTheMediaOriginAlone) {
  auto img_src = [](const HttpResponse& r) {
    const std::string csp = r.headers.at("Content-Security-Policy");
    const size_t at = csp.find("img-src ");
    return at == std::string::npos ? std::string() : csp.substr(at, csp.find(';', at) - at);
  };
  EXPECT_EQ(img_src(site_->Serve(Get("/console/"))), "img-src 'self'");
  auto with_media = ConsoleSite::Load(dir_, "https://media.example.com:8443/base");
  ASSERT_TRUE(with_media.ok()) << with_media.status().ToString();
  EXPECT_EQ(img_src(with_media->Serve(Get("/console/"))),
            "img-src 'self' https://media.example.com:8443");
  EXPECT_EQ(img_src(with_media->Serve(Get("/console/nothing.js"))),
            "img-src 'self' https://media.example.com:8443");
  EXPECT_EQ(OriginOf("http://127.0.0.1:8082"), "http://127.0.0.1:8082");
  for (const char* bad :
       {"ftp://media.example.com", "https://", "https://a b;script-src *", "media.example.com"}) {
    EXPECT_EQ(OriginOf(bad), "") << bad;
    EXPECT_EQ(ConsoleSite::Load(dir_, bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

TEST_F(ConsoleTest, AFolderWithoutAnIndexIsRefusedAtStartAndTheShippedConsoleLoads) {
  std::filesystem::remove(dir_ + "/index.html");
  EXPECT_EQ(ConsoleSite::Load(dir_).status().code(), Code::kNotFound);
  EXPECT_EQ(ConsoleSite::Load(dir_ + "/nowhere").status().code(), Code::kNotFound);
  auto shipped = ConsoleSite::Load(test::SourcePath("services/console"));
  ASSERT_TRUE(shipped.ok()) << shipped.status().ToString();
  HttpResponse index = shipped->Serve(Get("/console/"));
  ASSERT_EQ(index.status, 200);
  // No inline script (the policy would block it): every script is a module file of the folder.
  EXPECT_EQ(index.body.find("<script>"), std::string::npos);
  EXPECT_EQ(index.body.find("onclick="), std::string::npos);
  EXPECT_EQ(index.body.find("http://"), std::string::npos) << "nothing from another origin";
  EXPECT_EQ(index.body.find("https://"), std::string::npos) << "nothing from another origin";
}

}  // namespace
}  // namespace convoy::conversation
