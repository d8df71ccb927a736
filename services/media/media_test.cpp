// Integration: media against a real broker and PostgreSQL, Meta (and an upload destination)
// played by the fake Graph API; GET /media/ through a real HTTP server, requests written byte for
// byte on a socket (no client normalises the paths).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "convoy/consumer_group.h"
#include "convoy/crypto.h"
#include "convoy/http.h"
#include "convoy/json.h"
#include "convoy/metrics.h"
#include "convoy/startup.h"
#include "convoy/tokens.h"
#include "convoy/topology.h"
#include "fake_graph.h"
#include "fetcher.h"
#include "intake.h"
#include "owners.h"
#include "retention_rules.h"
#include "server.h"
#include "testsupport.h"
#include "uploader.h"
#include "verify.h"

namespace convoy::media {
namespace {

using namespace std::chrono_literals;
using test::WaitUntil;

constexpr const char* kBusiness = "106540352242922";
constexpr const char* kToken = "test-token";
constexpr const char* kMediaToken = "media-token";

std::string Fixture(const std::string& name) {
  return test::ReadFile(test::FixturePath("media/" + name));
}

// One raw HTTP/1.1 request with the path exactly as given; status and body.
std::pair<int, std::string> RawRequest(int port, const std::string& method, const std::string& path,
                                       const std::string& token,
                                       const std::string& content_type = "",
                                       const std::string& body = "") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {0, "connect failed"};
  }
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
      (token.empty() ? "" : "Authorization: Bearer " + token + "\r\n") +
      (content_type.empty() ? "" : "Content-Type: " + content_type + "\r\n") +
      (method == "GET" ? "" : "Content-Length: " + std::to_string(body.size()) + "\r\n") + "\r\n" +
      body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
    resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  int status = resp.size() > 12 ? std::atoi(resp.c_str() + 9) : 0;
  auto at = resp.find("\r\n\r\n");
  return {status, at == std::string::npos ? "" : resp.substr(at + 4)};
}

std::pair<int, std::string> RawGet(int port, const std::string& path, const std::string& token) {
  return RawRequest(port, "GET", path, token);
}

class MediaTest : public ::testing::Test {
 protected:
  MediaTest()
      : vhost_("media"),
        db_("media"),
        amqp_{vhost_.url(), "media-test"},
        pub_(amqp_),
        graph_(kToken) {}

  void SetUp() override {
    ASSERT_TRUE(graph_.Start().ok());
    dir_ = ::testing::TempDir() + "/" + test::UniqueName("media");
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    media_dir_ = dir_ + "/media";
    ASSERT_EQ(::mkdir(media_dir_.c_str(), 0755), 0);
    Status s = PrepareDatabaseService(test::SourcePath("proto-schemas"), db_.dsn(),
                                      test::SourcePath("deploy/postgres"),
                                      /*migrate=*/true, &base_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto conn = PgConnection::Connect(db_.dsn());
    ASSERT_TRUE(conn.ok());
    sql_ = std::move(*conn);
    pub_.Start();
    ASSERT_TRUE(pub_.WaitConnected(20s));
  }

  void TearDown() override {
    if (group_) group_->Stop();
  }

  FetchSettings Fetch() const {
    FetchSettings f;
    f.graph_base_url = graph_.base_url();
    f.graph_token = kToken;
    f.media_dir = media_dir_;
    f.timeout = 5000ms;
    f.clock = [] {
      return std::chrono::system_clock::from_time_t(kNoon);
    };  // the quota day is kDay
    return f;
  }
  static constexpr std::time_t kNoon = 1772366400;  // 2026-03-01T12:00:00Z
  static constexpr const char* kDay = "2026-03-01";
  static constexpr const char* kUser =
      "106540352242922:16505551234";  // FetchMedia's conversation key

  // Today's usage of the user's (or the number's) bucket: "photos/bytes", "" when none.
  std::string Used(const std::string& scope, const std::string& who) {
    auto r = sql_->Exec("SELECT photos || '/' || bytes FROM media_quota_usage WHERE bucket = $1",
                        {std::string(kDay) + "|" + scope + "|" + who});
    return r.ok() && !r->empty() ? r->get(0, 0) : "";
  }
  void SetUsed(const std::string& scope, const std::string& who, int64_t photos, int64_t bytes) {
    ASSERT_TRUE(
        sql_->Exec(
                "INSERT INTO media_quota_usage (bucket, day, photos, bytes) VALUES ($1, $2::date, "
                "$3::int, $4::bigint)",
                {std::string(kDay) + "|" + scope + "|" + who, std::string(kDay),
                 std::to_string(photos), std::to_string(bytes)})
            .ok());
  }
  static Counter& Refused(const char* kind) {
    return DefaultRegistry().GetCounter("convoy_media_quota_refused_total", "",
                                        std::string("kind=\"") + kind + "\"");
  }

  bool allow_private_ = true;  // the fake's upload endpoint is on loopback
  void Start(const FetchSettings& fetch, int threads = 4, int max_attempts = 5) {
    UploadSettings up;
    up.media_dir = media_dir_;
    up.destinations = {{"listing", graph_.upload_url()}, {"broken", "http://127.0.0.1:1/upload"}};
    up.timeout = 5000ms;
    up.max_attempts = max_attempts;
    up.allow_private = allow_private_;
    group_ = std::make_unique<ConsumerGroup>(pub_);
    auto emit = [this](AmqpMessage m) { return pub_.PublishAndWait(std::move(m), 10s); };
    ASSERT_TRUE(group_
                    ->Add({amqp_, queues::kMediaFetch, 32, max_attempts}, threads,
                          [this, fetch, emit]() -> Result<DeliveryHandler> {
                            auto db = PgConnection::Connect(db_.dsn());
                            if (!db.ok()) return db.status();
                            std::shared_ptr<PgConnection> conn(std::move(*db));
                            auto f = std::make_shared<Fetcher>(*conn, base_.schemas, fetch, emit);
                            return DeliveryHandler(
                                [conn, f](const Delivery& d) { return f->Handle(d); });
                          })
                    .ok());
    ASSERT_TRUE(group_
                    ->Add({amqp_, queues::kMediaUpload, 32, max_attempts}, 1,
                          [this, up, emit]() -> Result<DeliveryHandler> {
                            auto db = PgConnection::Connect(db_.dsn());
                            if (!db.ok()) return db.status();
                            std::shared_ptr<PgConnection> conn(std::move(*db));
                            auto u = std::make_shared<Uploader>(*conn, base_.schemas, up, emit);
                            return DeliveryHandler(
                                [conn, u](const Delivery& d) { return u->Handle(d); });
                          })
                    .ok());
    group_->Start();
    ASSERT_TRUE(WaitUntil([&] { return group_->connected(); }, 20s));
  }

  void Publish(const std::string& queue, const std::string& dedupe, const std::string& body) {
    AmqpMessage m;
    m.exchange = exchanges::kCommands;
    m.routing_key = queue;
    m.message_id = dedupe;
    m.body = body;
    m.headers = {{headers::kDedupeKey, dedupe},
                 {headers::kCorrelationId, "corr-" + dedupe},
                 {headers::kConversationKey, std::string(kBusiness) + ":16505551234"}};
    ASSERT_TRUE(pub_.PublishAndWait(std::move(m), 10s).ok());
  }

  // kinds: the step's `accepts` as a JSON array ("" none).
  void FetchMedia(const std::string& dedupe, const std::string& media_id,
                  const std::string& mime = "", const std::string& sha256 = "", int keep_days = 0,
                  const std::string& kinds = "") {
    Publish(queues::kMediaFetch, dedupe,
            R"({"schema":"media.fetch","version":1,"correlation_id":"corr-)" + dedupe +
                R"(","dedupe_key":")" + dedupe + R"(","conversation_key":")" + kBusiness +
                R"(:16505551234","phone_number_id":")" + kBusiness + R"(","media_id":")" +
                media_id + "\"" + (mime.empty() ? "" : R"(,"mime_type":")" + mime + "\"") +
                (sha256.empty() ? "" : R"(,"sha256":")" + sha256 + "\"") +
                (keep_days ? R"(,"keep_days":)" + std::to_string(keep_days) : "") +
                (kinds.empty() ? "" : R"(,"kinds":)" + kinds) + "}");
  }
  // A file of these bytes in the test's folder (outside the media folder), for the fake Graph API.
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // A media.fetch command for a number's media, for a Fetcher called directly (no broker).
  static Delivery FetchCommand(const std::string& pnid, const std::string& media_id) {
    Delivery d;
    d.queue = queues::kMediaFetch;
    d.body = R"({"schema":"media.fetch","version":1,"correlation_id":"c","dedupe_key":"fetch:)" +
             media_id + R"(","conversation_key":")" + pnid +
             R"(:16505551234","phone_number_id":")" + pnid + R"(","media_id":")" + media_id +
             R"("})";
    d.headers = {{headers::kDedupeKey, "fetch:" + media_id},
                 {headers::kConversationKey, pnid + ":16505551234"}};
    return d;
  }

  void Upload(const std::string& dedupe, const std::string& stored,
              const std::string& destination) {
    Publish(queues::kMediaUpload, dedupe,
            R"({"schema":"media.upload","version":1,"correlation_id":"corr-)" + dedupe +
                R"(","dedupe_key":")" + dedupe + R"(","stored_name":")" + stored +
                R"(","destination":")" + destination + R"("})");
  }

  int64_t Count(const std::string& sql,
                const std::vector<std::optional<std::string>>& params = {}) {
    auto r = sql_->Exec(sql, params);
    return r.ok() && !r->empty() ? r->get_int(0, 0) : -1;
  }

  // Events emitted so far with this routing key (drained from conversation.events).
  std::vector<Delivery>& Events() {
    auto n = QueueMessageCount(amqp_, queues::kConversationEvents);
    if (n.ok() && *n > 0) {
      auto taken = TakeMessages(amqp_, queues::kConversationEvents, *n);
      if (taken.ok()) events_.insert(events_.end(), taken->begin(), taken->end());
    }
    return events_;
  }
  size_t EventCount(const std::string& key) {
    size_t n = 0;
    for (const auto& e : Events()) n += e.routing_key == key;
    return n;
  }
  std::string EventBody(const std::string& key) {
    for (const auto& e : Events()) {
      if (e.routing_key == key) return e.body;
    }
    return "";
  }

  test::TestVhost vhost_;
  test::TestDatabase db_;
  AmqpOptions amqp_;
  Publisher pub_;
  fake::FakeGraph graph_;
  DatabaseService base_;
  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<ConsumerGroup> group_;
  std::string dir_, media_dir_;
  std::vector<Delivery> events_;
};

TEST_F(MediaTest, JpegAndPngAreFetchedVerifiedAndStoredUnderTheirHash) {
  Start(Fetch());
  graph_.RegisterMedia("m-jpg", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  graph_.RegisterMedia("m-png", test::FixturePath("media/photo4.png"), "image/png");
  FetchMedia("f1", "m-jpg", "image/jpeg",
             "+oqhq9v7tRhqW/bishqEZ1FBTy9ZhxjhPUDmRLD+xMM=");  // the webhook's base64
  FetchMedia("f2", "m-png", "image/png", "", 400);             // a checklist's photo: kept 400 days
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 2; }, 20s))
      << EventBody("media.failed");
  const std::string jpg = Sha256Hex(Fixture("photo1.jpg")) + ".jpg",
                    png = Sha256Hex(Fixture("photo4.png")) + ".png";
  EXPECT_EQ(test::ListDir(media_dir_), (std::set<std::string>{jpg, png}));
  EXPECT_EQ(test::ReadFile(media_dir_ + "/" + jpg), Fixture("photo1.jpg"));
  EXPECT_EQ(test::ReadFile(media_dir_ + "/" + png), Fixture("photo4.png"));
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects WHERE stored_name IN ($1, $2)", {jpg, png}),
            2);
  EXPECT_EQ(Count("SELECT coalesce(sum(keep_days), 0) FROM media_objects"), 400)
      << "the flow's days, with the file";
  std::string stored;
  for (const auto& e : Events()) stored += e.routing_key == "media.stored" ? e.body + "\n" : "";
  EXPECT_NE(stored.find(R"("stored_name":")" + jpg), std::string::npos) << stored;
  EXPECT_NE(stored.find(R"("stored_name":")" + png), std::string::npos) << stored;
  // Fetched again: no second download.
  FetchMedia("f3", "m-jpg");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 3; }, 20s));
  EXPECT_EQ(graph_.DownloadCount(), 2u);
}

TEST_F(MediaTest, AnExpiredUrlIsRefreshedOnceAndTheFileStored) {
  Start(Fetch());
  graph_.RegisterMedia("m-exp", test::FixturePath("media/photo2.jpg"), "image/jpeg");
  graph_.Inject(404, 0, 1, 0, "/_download/");  // the URL from the first metadata has expired
  FetchMedia("e1", "m-exp");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s))
      << EventBody("media.failed");
  EXPECT_EQ(graph_.DownloadCount(), 1u);
  EXPECT_EQ(test::ListDir(media_dir_).size(), 1u);
}

TEST_F(MediaTest, ServerErrorsAreRetriedAndTheFileStoredOnce) {
  Start(Fetch());
  graph_.RegisterMedia("m-503", test::FixturePath("media/photo3.jpg"), "image/jpeg");
  graph_.Inject(503, 0, 1, 0, "/_download/");
  FetchMedia("r1", "m-503");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s))
      << EventBody("media.failed");
  EXPECT_EQ(graph_.DownloadCount(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 1);
  EXPECT_EQ(test::ListDir(media_dir_).size(), 1u);
  EXPECT_EQ(EventCount("media.failed"), 0u);
}

// Permanent failures: media.failed with the reason, no retry, nothing stored (no file, no row).
TEST_F(MediaTest, BadMediaFailsWithAReasonAndNothingIsStored) {
  FetchSettings f = Fetch();
  f.limits.image = 2000;  // the fixture photos are 2.6-2.7 KB
  Start(f);
  graph_.RegisterMedia("m-big", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  graph_.RegisterMedia("m-magic", test::FixturePath("media/photo4.png"),
                       "image/jpeg");  // a PNG said to be a JPEG
  graph_.RegisterMedia("m-type", test::FixturePath("media/photo1.jpg"), "text/html");
  graph_.RegisterMedia("m-small", test::FixturePath("media/photo4.png"), "image/png");
  FetchMedia("b1", "m-big");
  FetchMedia("b2", "m-magic");
  FetchMedia("b3", "m-type");
  FetchMedia("b4", "m-small", "image/png", std::string(64, 'a'));  // the webhook's sha256 disagrees
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.failed") == 4; }, 20s));
  std::string reasons;
  for (const auto& e : Events()) {
    if (e.routing_key == "media.failed") reasons += e.body + "\n";
  }
  EXPECT_NE(reasons.find("image of 2709 bytes (declared) is over the limit of 2000"),
            std::string::npos)
      << reasons;
  EXPECT_NE(reasons.find("content does not look like image/jpeg"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("type not allowed: text/html"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("sha256 differs from the webhook's"), std::string::npos) << reasons;
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 0);
  EXPECT_TRUE(test::ListDir(media_dir_).empty()) << *test::ListDir(media_dir_).begin();
  EXPECT_EQ(EventCount("media.stored"), 0u);
}

// A PDF (an inspection report) and a voice note (OGG Opus, as WhatsApp records them) are stored
// like photos: under their hash with their own extension, and media.stored names their type.
TEST_F(MediaTest, ADocumentAndAVoiceNoteAreStoredWithTheirExtension) {
  Start(Fetch());
  const std::string pdf = "%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
  const std::string ogg =
      std::string("OggS\0\x02\0\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\x13OpusHead\x01\x01", 34);
  graph_.RegisterMedia("m-pdf", Write("report.pdf", pdf), "application/pdf");
  graph_.RegisterMedia("m-ogg", Write("voice.ogg", ogg), "audio/ogg; codecs=opus");
  FetchMedia("d1", "m-pdf", "application/pdf", Sha256Hex(pdf), 400, R"(["image","document"])");
  FetchMedia("d2", "m-ogg", "audio/ogg; codecs=opus", "", 0, R"(["audio"])");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 2; }, 20s))
      << EventBody("media.failed");
  const std::string pdf_name = Sha256Hex(pdf) + ".pdf", ogg_name = Sha256Hex(ogg) + ".ogg";
  EXPECT_EQ(test::ListDir(media_dir_), (std::set<std::string>{pdf_name, ogg_name}));
  EXPECT_EQ(test::ReadFile(media_dir_ + "/" + pdf_name), pdf);
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects WHERE (stored_name, mime_type) IN (($1, "
                  "'application/pdf'), "
                  "($2, 'audio/ogg'))",
                  {pdf_name, ogg_name}),
            2);
  std::string stored;
  for (const auto& e : Events()) stored += e.routing_key == "media.stored" ? e.body + "\n" : "";
  EXPECT_NE(stored.find(R"("mime_type":"application/pdf")"), std::string::npos) << stored;
  EXPECT_NE(stored.find(R"("mime_type":"audio/ogg")"), std::string::npos) << stored;
}

// Hostile "documents": a web page and a program sent as a PDF, and a real PDF sent where the step
// takes photos only. Each fails for good with the reason and the code the person is told by; no
// file, no row.
TEST_F(MediaTest, APageOrAProgramSentAsADocumentIsRefused) {
  Start(Fetch());
  const std::string html = "<!DOCTYPE html><html><body><script>steal()</script></body></html>";
  const std::string elf = std::string(
      "\x7F"
      "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0",
      20);
  const std::string pdf = "%PDF-1.7\n%%EOF\n";
  graph_.RegisterMedia("m-html", Write("page.pdf", html), "application/pdf");
  graph_.RegisterMedia("m-elf", Write("tool.pdf", elf), "application/pdf");
  graph_.RegisterMedia("m-pdf", Write("report.pdf", pdf), "application/pdf");
  FetchMedia("h1", "m-html", "application/pdf", "", 0, R"(["image","document"])");
  FetchMedia("h2", "m-elf", "application/pdf", "", 0, R"(["image","document"])");
  FetchMedia("h3", "m-pdf", "application/pdf", "", 0, R"(["image"])");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.failed") == 3; }, 20s))
      << EventBody("media.stored");
  std::string failed;
  for (const auto& e : Events()) failed += e.routing_key == "media.failed" ? e.body + "\n" : "";
  EXPECT_NE(failed.find("content does not look like application/pdf (it is an HTML page)"),
            std::string::npos)
      << failed;
  EXPECT_NE(failed.find("content does not look like application/pdf (it is an ELF executable)"),
            std::string::npos)
      << failed;
  EXPECT_NE(failed.find("type not allowed here: application/pdf is document, the step takes image"),
            std::string::npos)
      << failed;
  size_t codes = 0;
  for (size_t at = 0; (at = failed.find(R"("code":"not_a_photo")", at)) != std::string::npos; ++at)
    ++codes;
  EXPECT_EQ(codes, 3u) << failed;
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 0);
  EXPECT_TRUE(test::ListDir(media_dir_).empty());
  EXPECT_EQ(EventCount("media.stored"), 0u);
}

// 20 commands for one media id at once, over 4 consumers, the first download slow: one download,
// one file, one row, and every command answered with media.stored.
TEST_F(MediaTest, TheSameMediaFetchedTwentyTimesAtOnceIsDownloadedOnce) {
  Start(Fetch(), 4);
  graph_.RegisterMedia("m-many", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  graph_.Inject(200, 0, 1, 500, "/_download/");
  for (int i = 0; i < 20; ++i) FetchMedia("many" + std::to_string(i), "m-many");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 20; }, 40s))
      << EventCount("media.stored");
  EXPECT_EQ(graph_.DownloadCount(), 1u);
  EXPECT_EQ(test::ListDir(media_dir_).size(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 1);
}

// Retention: stored media past --retention_days go with their files; a file that a newer row
// (the same bytes under another media id) still names stays; settled uploads go, one in flight
// stays.
TEST_F(MediaTest, RetentionRemovesOldMediaWithTheirFilesButNotAFileStillNamed) {
  auto store = [&](const std::string& media_id, const std::string& name, int days_old,
                   int keep_days = 0) {
    std::ofstream(media_dir_ + "/" + name) << name;
    ASSERT_TRUE(
        sql_->Exec("INSERT INTO media_objects (media_id, stored_name, sha256, size, mime_type, "
                   "stored_at, keep_days) "
                   "VALUES ($1, $2, 'x', 1, 'image/jpeg', now() - make_interval(days => $3::int), "
                   "NULLIF($4, '0')::int)",
                   {media_id, name, std::to_string(days_old), std::to_string(keep_days)})
            .ok());
  };
  const std::string alone = Sha256Hex("alone") + ".jpg", shared = Sha256Hex("shared") + ".jpg",
                    fresh = Sha256Hex("fresh") + ".jpg";
  store("old-alone", alone, 91);
  store("old-shared", shared, 91);
  store("new-shared", shared, 1);
  store("new", fresh, 1);
  // A flow's own days: a checklist's 400 outlive the 90, a flow's 7 do not wait for them.
  const std::string evidence = Sha256Hex("evidence") + ".jpg", brief = Sha256Hex("brief") + ".jpg";
  store("evidence", evidence, 300, 400);
  store("brief", brief, 8, 7);
  for (const auto& [key, status, days] :
       {std::tuple{"up-old", "uploaded", 91}, std::tuple{"up-flight", "uploading", 91},
        std::tuple{"up-new", "uploaded", 1}}) {
    ASSERT_TRUE(sql_->Exec("INSERT INTO media_uploads (dedupe_key, stored_name, destination, "
                           "status, correlation_id, "
                           "updated_at) VALUES ($1, $2, 'listing', $3, 'c', now() - "
                           "make_interval(days => $4::int))",
                           {std::string(key), fresh, std::string(status), std::to_string(days)})
                    .ok());
  }
  auto r = PruneOnce(*sql_, "media", media::RetentionRules(media_dir_, 90), 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["media_objects"], 3);
  EXPECT_EQ((*r)["media_uploads"], 1);
  struct stat st;
  EXPECT_NE(::stat((media_dir_ + "/" + alone).c_str(), &st), 0) << "removed with its row";
  EXPECT_EQ(::stat((media_dir_ + "/" + shared).c_str(), &st), 0) << "still named by new-shared";
  EXPECT_EQ(::stat((media_dir_ + "/" + fresh).c_str(), &st), 0);
  EXPECT_EQ(::stat((media_dir_ + "/" + evidence).c_str(), &st), 0) << "kept its flow's 400 days";
  EXPECT_NE(::stat((media_dir_ + "/" + brief).c_str(), &st), 0) << "gone after its flow's 7 days";
  auto left = sql_->Exec("SELECT string_agg(media_id, ',' ORDER BY media_id) FROM media_objects");
  EXPECT_EQ(left->get(0, 0), "evidence,new,new-shared");
  auto uploads =
      sql_->Exec("SELECT string_agg(dedupe_key, ',' ORDER BY dedupe_key) FROM media_uploads");
  EXPECT_EQ(uploads->get(0, 0), "up-flight,up-new");
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/" + test::UniqueName("serve");
    media_ = dir_ + "/media";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(media_.c_str(), 0755), 0);
    photo_ = Fixture("photo1.jpg");
    name_ = Sha256Hex(photo_) + ".jpg";
    std::ofstream(media_ + "/" + name_, std::ios::binary) << photo_;
    std::ofstream(dir_ + "/secret.txt") << kSecret;
    // A name of the generator's own pattern, planted as a symlink to a file outside the folder.
    link_ = Sha256Hex("planted") + ".jpg";
    ASSERT_EQ(::symlink((dir_ + "/secret.txt").c_str(), (media_ + "/" + link_).c_str()), 0);
  }
  // The media token, --media_public, the link secret; no named tokens.
  void Serve(const std::string& token, bool open_for_local, const std::string& link_secret) {
    ServeSettings s;
    s.media_dir = media_;
    s.token = token;
    s.open_for_local = open_for_local;
    s.link_secret = link_secret;
    ServeWith(std::move(s));
  }
  void ServeWith(ServeSettings s) {
    server_ = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", 0, 1 << 20});
    server_->Route("GET", "/media/", [s](const HttpRequest& r) { return ServeMedia(r, s); });
    ASSERT_TRUE(server_->Start().ok());
  }
  std::pair<int, std::string> Get(const std::string& path, const std::string& token = kMediaToken) {
    return RawGet(server_->port(), path, token);
  }

  static constexpr const char* kSecret = "THE-SECRET-OUTSIDE-THE-MEDIA-FOLDER";
  std::string dir_, media_, photo_, name_, link_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServeTest, AStoredFileIsStreamedWithItsTypeToATokenHolder) {
  Serve(kMediaToken, false, "");
  auto [status, body] = Get("/media/" + name_);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, photo_);
  HttpClientRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/media/" + name_;
  req.headers["Authorization"] = std::string("Bearer ") + kMediaToken;
  auto r = HttpFetch(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->content_type, "image/jpeg");
  EXPECT_EQ(r->headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(Get("/media/" + name_, "").first, 401) << "no token";
  EXPECT_EQ(Get("/media/" + name_, "wrong").first, 401) << "wrong token";
  EXPECT_EQ(Get("/media/" + Sha256Hex("absent") + ".jpg").first, 404)
      << "a valid name that is not stored";
}

// A document is served as an attachment named by its stored name (never inline, never the
// sender's own file name); a photo stays inline.
TEST_F(ServeTest, ADocumentIsServedAsAnAttachment) {
  const std::string pdf = "%PDF-1.4\n%%EOF\n", pdf_name = Sha256Hex(pdf) + ".pdf";
  std::ofstream(media_ + "/" + pdf_name, std::ios::binary) << pdf;
  Serve(kMediaToken, false, "");
  HttpClientRequest req;
  req.headers["Authorization"] = std::string("Bearer ") + kMediaToken;
  req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/media/" + pdf_name;
  auto r = HttpFetch(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, pdf);
  EXPECT_EQ(r->content_type, "application/pdf");
  EXPECT_EQ(r->headers["content-disposition"], "attachment; filename=\"" + pdf_name + "\"");
  EXPECT_EQ(r->headers["x-content-type-options"], "nosniff");
  req.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/media/" + name_;
  auto photo = HttpFetch(req);
  ASSERT_TRUE(photo.ok());
  EXPECT_EQ(photo->headers.count("content-disposition"), 0u) << "a photo is shown inline";
}

// Each way out of the folder, on its own: 404 or 403, and never the secret's bytes.
TEST_F(ServeTest, NoRequestReadsAnythingOutsideTheMediaFolder) {
  Serve(kMediaToken, false, "");
  const std::string secret = dir_ + "/secret.txt";
  auto refused = [&](const std::string& path, std::set<int> statuses) {
    auto [status, body] = Get(path);
    EXPECT_TRUE(statuses.count(status)) << path << " → " << status;
    EXPECT_EQ(body.find(kSecret), std::string::npos) << path << " leaked the secret";
  };
  refused("/media/../secret.txt", {403, 404});
  refused("/media/..%2fsecret.txt", {404});
  refused("/media/%2e%2e%2fsecret.txt", {404});
  refused("/media/%2e%2e/secret.txt", {403, 404});
  refused("/media/..%5csecret.txt", {404});
  // A backslash is not allowed in a request line: the HTTP layer answers 400 before any handler.
  refused("/media/..\\secret.txt", {400, 404});
  refused("/media/" + name_ + "%00.txt", {404});
  refused("/media/%00" + name_, {404});
  refused("/media/" + secret, {404});
  refused("/media/%2f" + secret.substr(1), {404});
  refused("/media//etc/passwd", {404});
  refused("/media/" + Sha256Hex("x") + ".exe", {404});
  refused("/media/" + Sha256Hex("x") + ".JPG", {404});
  refused("/media/" + name_ + "/", {404});
  refused("/media/", {404});
  refused("/media/" + link_, {403});
  refused("/media/.%2e/secret.txt", {403, 404});
}

TEST_F(ServeTest, WithoutATokenServingIsClosedUnlessOpenedForLocalUse) {
  Serve("", false, "");
  EXPECT_EQ(Get("/media/" + name_, "").first, 403);
  EXPECT_EQ(Get("/media/" + name_, "anything").first, 403);
  server_->Stop();
  Serve("", true, "");
  EXPECT_EQ(Get("/media/" + name_, "").first, 200);
  EXPECT_EQ(Get("/media/" + link_, "").first, 403) << "opened, still only the folder";
}

// Named tokens alone open serving; a tenant's token is answered only once its tenant is known to
// own the file: when that cannot be said, 503 (never the file), and without a way to ask, nothing.
TEST_F(ServeTest, ATenantsTokenGetsNothingItsTenantIsNotKnownToOwn) {
  const std::string token = "acme-token-0123456789", global = "global-token-0123456789";
  auto set = TokenSet::Parse(
      "acme viewer acme " + TokenHashField(token) + "\nops admin * " + TokenHashField(global),
      "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ServeSettings s;
  s.media_dir = media_;
  s.tokens = std::make_shared<TokenStore>(std::move(*set));
  ServeWith(s);
  EXPECT_EQ(Get("/media/" + name_, global), std::make_pair(200, photo_))
      << "no media token: named ones open serving";
  EXPECT_EQ(Get("/media/" + name_, token).first, 404)
      << "no owner check configured: a tenant reads nothing";
  EXPECT_EQ(Get("/media/" + name_, "").first, 401);
  server_->Stop();
  s.owned_by = [](const std::string&, const std::string&) -> Result<bool> {
    return Status(Code::kUnavailable, "database down");
  };
  ServeWith(s);
  auto down = Get("/media/" + name_, token);
  EXPECT_EQ(down.first, 503);
  EXPECT_NE(down.second, photo_);
  EXPECT_EQ(Get("/media/" + name_, global).first, 200) << "a global token needs no owner check";
}

// A signed link serves its one file without the token until it expires; a tampered, expired or
// borrowed link is refused, and a link never reaches outside the folder.
TEST_F(ServeTest, ASignedLinkServesItsFileWithoutTheTokenAndNothingElse) {
  const std::string secret = "link-secret";
  Serve(kMediaToken, false, secret);
  const int64_t later = static_cast<int64_t>(std::time(nullptr)) + 600;
  std::string link = MediaLink("http://x", secret, name_, later);
  std::string path = link.substr(std::string("http://x").size());
  auto [status, body] = Get(path, "");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, photo_);
  std::string sig = MediaLinkSignature(secret, name_, later);
  auto refused = [&](const std::string& p, const char* why) {
    auto [st, b] = Get(p, "");
    EXPECT_EQ(st, 403) << why << ": " << p;
    EXPECT_NE(b, photo_) << why;
  };
  refused("/media/" + name_ + "?expires=" + std::to_string(later + 1) + "&sig=" + sig,
          "expiry moved");
  std::string flipped = sig;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  refused("/media/" + name_ + "?expires=" + std::to_string(later) + "&sig=" + flipped,
          "signature changed");
  refused("/media/" + name_ + "?sig=" + sig, "no expiry");
  const int64_t past = static_cast<int64_t>(std::time(nullptr)) - 1;
  refused("/media/" + name_ + "?expires=" + std::to_string(past) +
              "&sig=" + MediaLinkSignature(secret, name_, past),
          "expired");
  refused("/media/" + link_ + "?expires=" + std::to_string(later) + "&sig=" + sig,
          "another file's signature");
  refused("/media/" + link_ + "?expires=" + std::to_string(later) +
              "&sig=" + MediaLinkSignature(secret, link_, later),
          "a symlink out of the folder, signed");
  std::string wrong_key = MediaLink("http://x", "another-secret", name_, later).substr(8);
  refused(wrong_key, "signed with another secret");
  server_->Stop();
  Serve(kMediaToken, false, "");
  refused(path, "no link secret configured: links are refused");
}

// Uploads: once per dedupe key (a duplicate command, a retried 503), the URL recorded and
// emitted; a refusal or an unknown destination fails with the reason.
TEST_F(MediaTest, AStoredFileIsUploadedOncePerDedupeKey) {
  Start(Fetch());
  graph_.RegisterMedia("m-up", test::FixturePath("media/photo2.jpg"), "image/jpeg");
  FetchMedia("u0", "m-up");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s));
  const std::string stored = Sha256Hex(Fixture("photo2.jpg")) + ".jpg";
  graph_.Inject(503, 0, 1, 0, "/_fake/upload");
  Upload("up1", stored, "listing");
  Upload("up1", stored, "listing");  // the same command twice
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.uploaded") == 2; }, 30s))
      << EventBody("media.upload_failed");
  EXPECT_EQ(graph_.UploadCalls(), 1u);
  ASSERT_EQ(graph_.Uploaded().size(), 1u);
  EXPECT_EQ(graph_.Uploaded()[0], Fixture("photo2.jpg"));
  auto row = sql_->Exec("SELECT status, attempts, url FROM media_uploads WHERE dedupe_key = 'up1'");
  ASSERT_TRUE(row.ok() && row->size() == 1);
  EXPECT_EQ(row->get(0, 0), "uploaded");
  EXPECT_EQ(row->get(0, 1), "2") << "the 503, then the upload";
  EXPECT_EQ(row->get(0, 2).rfind("https://cdn.fake.example/", 0), 0u);
  EXPECT_NE(EventBody("media.uploaded").find(row->get(0, 2)), std::string::npos);

  Upload("up2", stored, "nowhere");
  graph_.Inject(400, 0, 1, 0, "/_fake/upload");
  Upload("up3", stored, "listing");
  Upload("up4", Sha256Hex("missing") + ".jpg", "listing");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.upload_failed") == 3; }, 20s));
  std::string reasons;
  for (const auto& e : Events()) {
    if (e.routing_key == "media.upload_failed") reasons += e.body + "\n";
  }
  EXPECT_NE(reasons.find("no upload destination named 'nowhere' is configured"), std::string::npos)
      << reasons;
  EXPECT_NE(reasons.find("the destination refused the upload: HTTP 400"), std::string::npos)
      << reasons;
  EXPECT_NE(reasons.find("no stored file named"), std::string::npos) << reasons;
  EXPECT_EQ(graph_.UploadCalls(), 1u);
}

// Without --upload_allow_private a destination on loopback is refused at the call, without a
// request (the name is resolved and the address checked first), failed at once with the reason.
TEST_F(MediaTest, AnUploadToAnInternalAddressIsRefusedWithoutACall) {
  allow_private_ = false;
  Start(Fetch());
  graph_.RegisterMedia("m-ssrf", test::FixturePath("media/photo3.jpg"), "image/jpeg");
  FetchMedia("s0", "m-ssrf");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s));
  Upload("ssrf1", Sha256Hex(Fixture("photo3.jpg")) + ".jpg", "listing");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.upload_failed") == 1; }, 20s));
  const std::string reason = EventBody("media.upload_failed");
  EXPECT_NE(reason.find("the destination is not allowed"), std::string::npos) << reason;
  EXPECT_NE(reason.find("resolves to 127.0.0.1"), std::string::npos) << reason;
  EXPECT_EQ(graph_.UploadCalls(), 0u);
}

// Over the user's bytes for the day: nothing downloaded, nothing stored, the refusal counted and
// sent back with code over_quota (the conversation's cue for a plain-language message). A photo
// that still fits is stored and charged.
TEST_F(MediaTest, APhotoOverTheUsersDailyBytesIsRefusedAndNothingStored) {
  FetchSettings f = Fetch();
  f.quota.bytes_per_user_per_day = 10000;
  Start(f);
  const int64_t photo1 = static_cast<int64_t>(Fixture("photo1.jpg").size());
  SetUsed("user", kUser, 7, 10000 - photo1 + 1);  // one byte short of room for photo1
  const uint64_t refused_before = Refused("user_bytes").Value();
  graph_.RegisterMedia("m-over", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  FetchMedia("q1", "m-over");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.failed") == 1; }, 20s))
      << EventBody("media.stored");
  const std::string failed = EventBody("media.failed");
  EXPECT_NE(failed.find(R"("code":"over_quota")"), std::string::npos) << failed;
  EXPECT_NE(failed.find("user_bytes"), std::string::npos) << failed;
  EXPECT_EQ(Refused("user_bytes").Value(), refused_before + 1);
  EXPECT_EQ(graph_.DownloadCount(), 0u) << "the declared size did not fit: no download";
  EXPECT_TRUE(test::ListDir(media_dir_).empty());
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM media_quota_charges"), 0);
  EXPECT_EQ(Used("user", kUser), "7/" + std::to_string(10000 - photo1 + 1)) << "nothing charged";

  // A smaller photo still fits: stored and charged to the user and the number.
  const int64_t photo4 = static_cast<int64_t>(Fixture("photo4.png").size());
  ASSERT_LT(photo4, photo1);
  graph_.RegisterMedia("m-fits", test::FixturePath("media/photo4.png"), "image/png");
  FetchMedia("q2", "m-fits");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s))
      << EventBody("media.failed");
  EXPECT_EQ(Used("user", kUser), "8/" + std::to_string(10000 - photo1 + 1 + photo4));
  EXPECT_EQ(Used("number", kBusiness), "1/" + std::to_string(photo4));
  EXPECT_EQ(test::ListDir(media_dir_).size(), 1u);
}

// A photo is charged once: fetched again under another dedupe key (stored: no charge), and
// redelivered after a charge whose delivery died before the stored row (admitted without a check
// although the day is now full, and not charged again).
TEST_F(MediaTest, ARedeliveredPhotoIsNotCountedTwice) {
  FetchSettings f = Fetch();
  f.quota.photos_per_user_per_day = 1;
  Start(f);
  const int64_t size = static_cast<int64_t>(Fixture("photo2.jpg").size());
  graph_.RegisterMedia("m-once", test::FixturePath("media/photo2.jpg"), "image/jpeg");
  FetchMedia("d1", "m-once");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 1; }, 20s))
      << EventBody("media.failed");
  FetchMedia("d2", "m-once");
  FetchMedia("d1", "m-once");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 3; }, 20s))
      << EventBody("media.failed");
  EXPECT_EQ(Used("user", kUser), "1/" + std::to_string(size));
  EXPECT_EQ(Used("number", kBusiness), "1/" + std::to_string(size));

  // An earlier delivery of m-crash was charged (the day is full with it), then died.
  graph_.RegisterMedia("m-crash", test::FixturePath("media/photo3.jpg"), "image/jpeg");
  const int64_t crash = static_cast<int64_t>(Fixture("photo3.jpg").size());
  ASSERT_TRUE(sql_->Exec("INSERT INTO media_quota_charges (media_id, day, bytes) VALUES "
                         "('m-crash', $1::date, $2)",
                         {std::string(kDay), std::to_string(crash)})
                  .ok());
  ASSERT_TRUE(
      sql_->Exec("UPDATE media_quota_usage SET photos = photos + 1, bytes = bytes + $1::bigint",
                 {std::to_string(crash)})
          .ok());
  FetchMedia("c1", "m-crash");
  ASSERT_TRUE(WaitUntil([&] { return EventCount("media.stored") == 4; }, 20s))
      << EventBody("media.failed");
  EXPECT_EQ(Used("user", kUser), "2/" + std::to_string(size + crash))
      << "charged once, by the first delivery";
  EXPECT_EQ(EventCount("media.failed"), 0u);
  EXPECT_EQ(test::ListDir(media_dir_).size(), 2u);
}

// Five photos of one user at once over four consumers (each with its own connection, as replicas
// are) against a limit of two: exactly two stored, three refused; the counts never pass the limit.
TEST_F(MediaTest, ConcurrentFetchesNeverPassTheUsersPhotoLimit) {
  FetchSettings f = Fetch();
  f.quota.photos_per_user_per_day = 2;
  Start(f, 4);
  const uint64_t refused_before = Refused("user_photos").Value();
  const char* photos[] = {"photo1.jpg", "photo2.jpg", "photo3.jpg", "photo4.png", "photo1.jpg"};
  for (int i = 0; i < 5; ++i) {
    const std::string name = photos[i];
    graph_.RegisterMedia("m-race" + std::to_string(i), test::FixturePath("media/" + name),
                         name.substr(name.size() - 3) == "png" ? "image/png" : "image/jpeg");
  }
  graph_.Inject(200, 0, 5, 300, "/_download/");  // downloads overlap
  for (int i = 0; i < 5; ++i) FetchMedia("race" + std::to_string(i), "m-race" + std::to_string(i));
  ASSERT_TRUE(
      WaitUntil([&] { return EventCount("media.stored") + EventCount("media.failed") == 5; }, 30s));
  EXPECT_EQ(EventCount("media.stored"), 2u);
  EXPECT_EQ(EventCount("media.failed"), 3u);
  EXPECT_EQ(Refused("user_photos").Value(), refused_before + 3);
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM media_quota_charges"), 2);
  EXPECT_EQ(Count("SELECT photos FROM media_quota_usage WHERE bucket = $1",
                  {std::string(kDay) + "|user|" + kUser}),
            2);
}

uint64_t Outcome(const char* outcome) {
  return DefaultRegistry()
      .GetCounter("convoy_media_fetches_total", "", std::string("outcome=\"") + outcome + "\"")
      .Value();
}

// Each number's inbound media is fetched with that number's own Graph token and under its own
// version (issue 27): the metadata call and the download both carry it. A number not in the
// registry: the deployment's token and version. A number whose token cannot be resolved: no
// call at all, and the fetch waits with the reason.
TEST_F(MediaTest, MediaIsFetchedWithTheOwningNumbersTokenAndVersion) {
  const std::string own = "106540352230101", lost = "106540352230109";
  const std::string token_file = dir_ + "/own-token";
  std::ofstream(token_file) << "own-number-token\n";
  for (const auto& [pnid, ref, version] :
       {std::make_tuple(own, "file:" + token_file, std::string("v27.0")),
        std::make_tuple(lost, std::string("env:CONVOY_TEST_MEDIA_LOST_TOKEN"), std::string())}) {
    ASSERT_TRUE(
        sql_->Exec("INSERT INTO numbers (phone_number_id, tenant, waba_id, display_phone_number, "
                   "graph_token_ref, graph_version, source) VALUES ($1, $1, '1', '+1', $2, "
                   "NULLIF($3, ''), "
                   "'api')",
                   {pnid, ref, version})
            .ok());
  }
  unsetenv("CONVOY_TEST_MEDIA_LOST_TOKEN");
  graph_.AcceptToken("own-number-token");
  graph_.RegisterMedia("m-own", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  graph_.RegisterMedia("m-demo", test::FixturePath("media/photo4.png"), "image/png");
  auto conn = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(conn.ok());
  std::vector<std::string> emitted;
  FetchSettings settings = Fetch();
  settings.graph_token_recheck = 1500ms;
  Fetcher fetcher(**conn, base_.schemas, settings, [&](AmqpMessage m) {
    emitted.push_back(m.routing_key);
    return Status::Ok();
  });
  auto fetch = [&](const std::string& pnid, const std::string& media_id) {
    return fetcher.Handle(FetchCommand(pnid, media_id));
  };
  const uint64_t held = Outcome("graph_token_unresolved");
  Disposition waits = fetch(lost, "m-lost");
  EXPECT_EQ(waits.kind, Disposition::Kind::kDelay);
  EXPECT_EQ(waits.reason,
            "graph token env:CONVOY_TEST_MEDIA_LOST_TOKEN not set (business number " + lost + ")");
  EXPECT_EQ(waits.delay_ms, 1500);
  EXPECT_EQ(Outcome("graph_token_unresolved"), held + 1);
  EXPECT_TRUE(graph_.Calls().empty()) << "no call with any token";

  ASSERT_EQ(fetch(own, "m-own").kind, Disposition::Kind::kAck);
  ASSERT_EQ(fetch(kBusiness, "m-demo").kind, Disposition::Kind::kAck);
  EXPECT_EQ(emitted, (std::vector<std::string>{"media.stored", "media.stored"}));
  std::vector<std::string> calls;
  for (const auto& c : graph_.Calls()) calls.push_back(c.method + " " + c.path + " " + c.token);
  EXPECT_EQ(calls, (std::vector<std::string>{"GET /v27.0/m-own own-number-token",
                                             "GET /_download/m-own own-number-token",
                                             std::string("GET /v24.0/m-demo ") + kToken,
                                             std::string("GET /_download/m-demo ") + kToken}));
}

// Media is tenant-scoped (issue 27): a file fetched through one tenant's number is that tenant's.
// A tenant's token reads its own files (200) and gets, for another tenant's, the very answer a file
// that does not exist gets (404, same body); a global token (a named `*` one, or the media token)
// reads every file; a file stored before files had an owner (no number) is global-only.
TEST_F(MediaTest, ATenantsTokenReadsItsOwnFilesAndAnotherTenantsAreNotThere) {
  const std::string acme = "106540352230201", globex = "106540352230202";
  test::RegisterNumber(*sql_, acme, "acme");
  test::RegisterNumber(*sql_, globex, "globex");
  graph_.RegisterMedia("m-acme", test::FixturePath("media/photo1.jpg"), "image/jpeg");
  graph_.RegisterMedia("m-globex", test::FixturePath("media/photo2.jpg"), "image/jpeg");
  auto conn = PgConnection::Connect(db_.dsn());
  ASSERT_TRUE(conn.ok());
  Fetcher fetcher(**conn, base_.schemas, Fetch(), [](AmqpMessage) { return Status::Ok(); });
  ASSERT_EQ(fetcher.Handle(FetchCommand(acme, "m-acme")).kind, Disposition::Kind::kAck);
  ASSERT_EQ(fetcher.Handle(FetchCommand(globex, "m-globex")).kind, Disposition::Kind::kAck);
  const std::string mine = Sha256Hex(Fixture("photo1.jpg")) + ".jpg",
                    theirs = Sha256Hex(Fixture("photo2.jpg")) + ".jpg";
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects WHERE (stored_name, phone_number_id) IN "
                  "(($1, $2), ($3, $4))",
                  {mine, acme, theirs, globex}),
            2)
      << "each row names the number it came through";
  // A file stored before 0034: its row names no number.
  const std::string old_bytes = Fixture("photo3.jpg"), old = Sha256Hex(old_bytes) + ".jpg";
  std::ofstream(media_dir_ + "/" + old, std::ios::binary) << old_bytes;
  ASSERT_TRUE(sql_->Exec("INSERT INTO media_objects (media_id, stored_name, sha256, size, "
                         "mime_type) VALUES ('m-old', "
                         "$1, $2, $3::bigint, 'image/jpeg')",
                         {old, Sha256Hex(old_bytes), std::to_string(old_bytes.size())})
                  .ok());
  const std::string acme_token = "acme-viewer-token-0123456789",
                    globex_token = "globex-agent-token-0123456789",
                    global_token = "ops-global-token-0123456789";
  auto set = TokenSet::Parse("acme-viewer viewer acme " + TokenHashField(acme_token) + "\n" +
                                 "globex-agent agent globex " + TokenHashField(globex_token) +
                                 "\n" + "ops operator * " + TokenHashField(global_token) + "\n",
                             "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto owners = std::make_shared<MediaOwners>(db_.dsn());
  ServeSettings settings{media_dir_,
                         kMediaToken,
                         false,
                         "",
                         std::make_shared<TokenStore>(std::move(*set)),
                         [owners](const std::string& name, const std::string& tenant) {
                           return owners->OwnedBy(name, tenant);
                         }};
  HttpServer server(HttpServerOptions{"127.0.0.1", 0, 1 << 20});
  server.Route("GET", "/media/",
               [settings](const HttpRequest& r) { return ServeMedia(r, settings); });
  ASSERT_TRUE(server.Start().ok());
  const auto get = [&](const std::string& name, const std::string& token) {
    return RawGet(server.port(), "/media/" + name, token);
  };
  const auto absent = get(Sha256Hex("never stored") + ".jpg", acme_token);
  ASSERT_EQ(absent.first, 404);
  EXPECT_EQ(get(mine, acme_token), std::make_pair(200, Fixture("photo1.jpg")));
  EXPECT_EQ(get(theirs, acme_token), absent)
      << "another tenant's file is not there, as one never stored";
  EXPECT_EQ(get(old, acme_token), absent) << "a file with no owner is global-only";
  EXPECT_EQ(get(theirs, globex_token), std::make_pair(200, Fixture("photo2.jpg")));
  EXPECT_EQ(get(mine, globex_token), absent);
  for (const std::string& global : {global_token, std::string(kMediaToken)}) {
    EXPECT_EQ(get(mine, global).first, 200);
    EXPECT_EQ(get(theirs, global).first, 200);
    EXPECT_EQ(get(old, global), std::make_pair(200, old_bytes));
  }
  EXPECT_EQ(get(mine, "not-a-token").first, 401);
  server.Stop();
}

// An agent's photo (issue 29: "image by uploaded media"): POST /v1/media stores it as the number's
// file, checked like a customer's, for a tenant's agent on the tenant's own number only. Every
// refusal writes nothing: no file in the folder, no row.
TEST_F(MediaTest, AnAgentsPhotoIsStoredAsItsNumbersAndAnythingElseIsRefusedAndWritesNothing) {
  const std::string acme = "106540352230201", globex = "106540352230202";
  test::RegisterNumber(*sql_, acme, "acme");
  test::RegisterNumber(*sql_, globex, "globex");
  const std::string agent = "acme-agent-token-0123456789", viewer = "acme-viewer-token-0123456789",
                    other = "globex-agent-token-0123456789", global = "ops-global-token-0123456789";
  auto set = TokenSet::Parse("acme-agent agent acme " + TokenHashField(agent) + "\n" +
                                 "acme-viewer viewer acme " + TokenHashField(viewer) + "\n" +
                                 "globex-agent agent globex " + TokenHashField(other) + "\n" +
                                 "ops operator * " + TokenHashField(global) + "\n",
                             "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto tokens = std::make_shared<TokenStore>(std::move(*set));
  auto owners = std::make_shared<MediaOwners>(db_.dsn());
  const std::string photo = Fixture("photo1.jpg"), png = Fixture("photo4.png");
  IntakeSettings intake{media_dir_, tokens, SizeLimits{},
                        [owners](const std::string& n, const std::string& t) {
                          return owners->NumberIsTenants(n, t);
                        },
                        [owners](const std::string& name, const std::string& sha, size_t size,
                                 const std::string& mime, const std::string& n) {
                          return owners->RecordUpload(name, sha, size, mime, n);
                        }};
  intake.limits.image = photo.size() + 10;
  ServeSettings serve{
      media_dir_, "", false, "", tokens, [owners](const std::string& name, const std::string& t) {
        return owners->OwnedBy(name, t);
      }};
  HttpServer server(HttpServerOptions{"127.0.0.1", 0, 8 << 20});
  server.Route("POST", "/v1/media",
               [intake](const HttpRequest& r) { return IntakeMedia(r, intake); });
  server.Route("GET", "/media/", [serve](const HttpRequest& r) { return ServeMedia(r, serve); });
  ASSERT_TRUE(server.Start().ok());
  const auto post = [&](const std::string& number, const std::string& token,
                        const std::string& type, const std::string& body) {
    return RawRequest(server.port(), "POST", "/v1/media?phone_number_id=" + number, token, type,
                      body);
  };
  const auto files = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(media_dir_))
      n += e.is_regular_file() ? 1 : 0;
    return n;
  };
  const auto rows = [&] { return Count("SELECT count(*) FROM media_objects"); };

  auto stored = post(acme, agent, "image/jpeg", photo);
  ASSERT_EQ(stored.first, 201) << stored.second;
  const std::string name = Sha256Hex(photo) + ".jpg";
  rapidjson::Document answer;
  answer.Parse(stored.second.c_str());
  ASSERT_TRUE(answer.IsObject()) << stored.second;
  EXPECT_EQ(std::string(answer["media"].GetString()), name);
  EXPECT_EQ(answer["size"].GetInt64(), static_cast<int64_t>(photo.size()));
  EXPECT_EQ(
      Count("SELECT count(*) FROM media_objects WHERE stored_name = $1 AND phone_number_id = $2",
            {name, acme}),
      1);
  EXPECT_EQ(RawGet(server.port(), "/media/" + name, viewer), std::make_pair(200, photo))
      << "the tenant reads it";
  EXPECT_EQ(RawGet(server.port(), "/media/" + name, other).first, 404) << "another tenant does not";
  ASSERT_EQ(post(acme, agent, "image/jpeg", photo), stored)
      << "the same photo again: the same name";
  ASSERT_EQ(post(acme, global, "image/png", png).first, 201)
      << "a global token, any number; PNG too";
  const int files_before = files(), rows_before = rows();
  ASSERT_EQ(files_before, 2);
  ASSERT_EQ(rows_before, 2);

  EXPECT_EQ(post(globex, agent, "image/jpeg", photo).first, 404)
      << "another tenant's number, as an unknown one";
  EXPECT_EQ(post("999", agent, "image/jpeg", photo).first, 404);
  EXPECT_EQ(post(acme, viewer, "image/jpeg", photo).first, 403) << "a viewer sends nothing";
  EXPECT_EQ(post(acme, "", "image/jpeg", photo).first, 401);
  EXPECT_EQ(post(acme, "not-a-token", "image/jpeg", photo).first, 401);
  const auto html = post(acme, agent, "image/jpeg", "<html><script>alert(1)</script></html>");
  EXPECT_EQ(html.first, 415);
  EXPECT_NE(html.second.find("HTML"), std::string::npos) << html.second;
  EXPECT_EQ(post(acme, agent, "image/png", photo).first, 415) << "a JPEG said to be a PNG";
  EXPECT_EQ(post(acme, agent, "image/webp", photo).first, 415) << "not an image message's type";
  EXPECT_EQ(post(acme, agent, "application/pdf", photo).first, 415);
  EXPECT_EQ(post(acme, agent, "image/jpeg", "").first, 400);
  EXPECT_EQ(post(acme, agent, "image/jpeg", photo + std::string(11, 'x')).first, 413)
      << "past the image limit";
  EXPECT_EQ(RawRequest(server.port(), "POST", "/v1/media?phone_number_id=12ab", agent, "image/jpeg",
                       photo)
                .first,
            400);
  EXPECT_EQ(RawRequest(server.port(), "POST", "/v1/media", agent, "image/jpeg", photo).first, 400);
  EXPECT_EQ(files(), files_before) << "a refusal stores no file";
  EXPECT_EQ(rows(), rows_before) << "a refusal records nothing";
  server.Stop();
}

// A person conversation's OIDC proxy signed in has no token: conversation vouches for them
// (convoy/tokens.h Vouch) and media checks the vouch, then the same role and tenant as for a token.
// A vouch for another request (body, number), a changed field, an expired one, another secret, or
// a media without the secret is 401; a viewer is 403, another tenant's number 404; every refusal
// writes nothing.
TEST_F(MediaTest, AVouchedPersonUploadsAsTheirRoleAndTenantAndABadVouchIsRefused) {
  const std::string acme = "106540352230301", acme2 = "106540352230303", globex = "106540352230302";
  test::RegisterNumber(*sql_, acme, "acme");
  test::RegisterNumber(*sql_, acme2, "acme");
  test::RegisterNumber(*sql_, globex, "globex");
  const std::string secret = "forward-secret-" + test::UniqueName("s") + "-0123456789abcdef";
  auto owners = std::make_shared<MediaOwners>(db_.dsn());
  const std::string photo = Fixture("photo1.jpg");
  IntakeSettings intake{media_dir_,
                        nullptr,
                        SizeLimits{},
                        [owners](const std::string& n, const std::string& t) {
                          return owners->NumberIsTenants(n, t);
                        },
                        [owners](const std::string& name, const std::string& sha, size_t size,
                                 const std::string& mime, const std::string& n) {
                          return owners->RecordUpload(name, sha, size, mime, n);
                        },
                        secret};
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const auto upload = [](const std::string& number, const std::string& body) {
    HttpRequest r;
    r.method = "POST";
    r.path = "/v1/media";
    r.query["phone_number_id"] = number;
    r.headers["content-type"] = "image/jpeg";
    r.body = body;
    return r;
  };
  const auto vouched = [&](HttpRequest r, const Caller& who, int64_t at) {
    r.headers[kVouchHeader] = Vouch(secret, who, r, at);
    return r;
  };
  const Caller sam{"sam-sso", Role::kAgent, "acme"}, vic{"vic-sso", Role::kViewer, "acme"};
  auto stored = IntakeMedia(vouched(upload(acme, photo), sam, now), intake);
  ASSERT_EQ(stored.status, 201) << stored.body;
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects WHERE stored_name = $1 AND "
                  "phone_number_id = $2",
                  {Sha256Hex(photo) + ".jpg", acme}),
            1);
  const int64_t rows_before = Count("SELECT count(*) FROM media_objects");
  EXPECT_EQ(IntakeMedia(vouched(upload(acme, photo), vic, now), intake).status, 403)
      << "a viewer sends nothing, vouched or not";
  EXPECT_EQ(IntakeMedia(vouched(upload(globex, photo), sam, now), intake).status, 404)
      << "another tenant's number";
  auto other_body = vouched(upload(acme, photo), sam, now);
  other_body.body = Fixture("photo2.jpg");
  EXPECT_EQ(IntakeMedia(other_body, intake).status, 401) << "a vouch for another photo";
  auto other_number = vouched(upload(acme, photo), sam, now);
  other_number.query["phone_number_id"] = acme2;
  EXPECT_EQ(IntakeMedia(other_number, intake).status, 401) << "a vouch for another number";
  auto promoted = vouched(upload(acme, photo), vic, now);
  std::string& h = promoted.headers[kVouchHeader];
  h.replace(h.find(" viewer "), 8, " agent ");
  EXPECT_EQ(IntakeMedia(promoted, intake).status, 401) << "a viewer's vouch made an agent's";
  EXPECT_EQ(IntakeMedia(vouched(upload(acme, Fixture("photo2.jpg")), sam, now - kVouchSeconds - 5),
                        intake)
                .status,
            401)
      << "an expired vouch";
  auto forged = upload(acme, Fixture("photo2.jpg"));
  forged.headers[kVouchHeader] = Vouch(secret + "x", sam, forged, now);
  EXPECT_EQ(IntakeMedia(forged, intake).status, 401) << "signed with another secret";
  IntakeSettings no_secret = intake;
  no_secret.forward_secret.clear();
  EXPECT_EQ(IntakeMedia(vouched(upload(acme, Fixture("photo2.jpg")), sam, now), no_secret).status,
            403)
      << "no tokens and no secret: uploads are closed";
  EXPECT_EQ(Count("SELECT count(*) FROM media_objects"), rows_before)
      << "a refusal records nothing";
}

}  // namespace
}  // namespace convoy::media
