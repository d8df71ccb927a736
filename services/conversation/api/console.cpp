#include "api/console.h"

#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "convoy/crypto.h"

namespace convoy::conversation {

namespace {

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr const char* kPrefix = "/console";

// The types the console is made of; any other file in the folder is not served.
const char* TypeOf(const std::string& name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"}};
  for (const auto& [ext, type] : kTypes) {
    const std::string e(ext);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0)
      return type;
  }
  return nullptr;
}

bool PlainName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (unsigned char c : name) {
    if (!(std::islower(c) || std::isdigit(c) || c == '.' || c == '_' || c == '-')) return false;
  }
  return name.find("..") == std::string::npos;
}

HttpResponse Plain(int status, const std::string& text, const std::string& img_origin) {
  HttpResponse r;
  r.status = status;
  r.body = text + "\n";
  AddConsoleHeaders(r, img_origin);
  return r;
}

}  // namespace

std::string OriginOf(const std::string& url) {
  size_t scheme = url.compare(0, 7, "http://") == 0    ? 7
                  : url.compare(0, 8, "https://") == 0 ? 8
                                                       : 0;
  if (scheme == 0) return "";
  const std::string origin = url.substr(0, url.find('/', scheme));
  if (origin.size() == scheme) return "";
  for (size_t i = scheme; i < origin.size(); ++i) {
    const unsigned char c = origin[i];
    if (!(std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']')) return "";
  }
  return origin;
}

void AddConsoleHeaders(HttpResponse& r, const std::string& img_origin) {
  // No inline script or style, nothing from another origin (but the photos of convoy-media's
  // signed links, when set), never framed (clickjacking), and the API only on this origin: a
  // token in sessionStorage is read by this origin's scripts alone.
  r.headers["Content-Security-Policy"] =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'" +
      (img_origin.empty() ? std::string() : " " + img_origin) +
      "; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  r.headers["X-Content-Type-Options"] = "nosniff";
  r.headers["X-Frame-Options"] = "DENY";
  r.headers["Referrer-Policy"] = "no-referrer";
  r.headers["Cross-Origin-Opener-Policy"] = "same-origin";
  r.headers["Cross-Origin-Resource-Policy"] = "same-origin";
}

Result<ConsoleSite> ConsoleSite::Load(const std::string& dir, const std::string& media_url) {
  ConsoleSite site;
  if (!media_url.empty()) {
    site.img_origin_ = OriginOf(media_url);
    if (site.img_origin_.empty())
      return Status(Code::kInvalidArgument, "media URL " + media_url + " has no http(s) origin");
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr)
    return Status(Code::kNotFound, "--console_dir " + dir + " is not a readable folder");
  Status failed = Status::Ok();
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const char* type = TypeOf(name);
    if (!PlainName(name) || type == nullptr) continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    // A symlink is never followed: what is served is what the folder itself holds.
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<size_t>(st.st_size) > kMaxFileBytes) {
      failed = Status(Code::kInvalidArgument, path + " is over 1 MiB: the console is small files");
      break;
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in.good() && !in.eof()) {
      failed = Status(Code::kInvalidArgument, "cannot read " + path);
      break;
    }
    ConsoleFile f{type, body.str(), ""};
    f.etag = "\"" + Sha256Hex(f.body).substr(0, 32) + "\"";
    site.files_[name] = std::move(f);
  }
  ::closedir(d);
  if (!failed.ok()) return failed;
  if (site.files_.count("index.html") == 0) {
    return Status(Code::kNotFound, "--console_dir " + dir + " has no index.html");
  }
  return site;
}

HttpResponse ConsoleSite::Serve(const HttpRequest& r) const {
  const std::string prefix = kPrefix;
  if (r.path.compare(0, prefix.size(), prefix) != 0) return Plain(404, "not found", img_origin_);
  if (r.method != "GET" && r.method != "HEAD") {
    HttpResponse refused = Plain(405, "the console is read with GET", img_origin_);
    refused.headers["Allow"] = "GET, HEAD";
    return refused;
  }
  if (r.path == prefix) {
    HttpResponse moved = Plain(301, "moved to /console/", img_origin_);
    moved.headers["Location"] = "/console/";
    return moved;
  }
  if (r.path[prefix.size()] != '/') return Plain(404, "not found", img_origin_);  // /consolefoo
  std::string name = r.path.substr(prefix.size() + 1);
  if (name.empty()) name = "index.html";
  auto it = files_.find(name);
  if (it == files_.end()) return Plain(404, "not found", img_origin_);
  HttpResponse resp;
  resp.content_type = it->second.content_type;
  AddConsoleHeaders(resp, img_origin_);
  resp.headers["ETag"] = it->second.etag;
  resp.headers["Cache-Control"] = "no-cache";
  if (r.Header("if-none-match") == it->second.etag) {
    resp.status = 304;
    return resp;
  }
  resp.body = it->second.body;
  return resp;
}

}  // namespace convoy::conversation
