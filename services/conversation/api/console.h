#pragma once
// The console (issue 30): a single page served at /console/ by convoy-conversation, talking only
// to this service's /v1/ API with the bearer token the person signs in with.
//
// The files are read once at start from --console_dir (services/console in the source tree,
// /usr/share/convoy/console in the images): every regular file directly in that folder whose name
// is plain (a-z, 0-9, '.', '_', '-', a known extension). A request is answered only when its path
// names one of those files exactly, so no path a client sends ever reaches the file system: "..",
// an encoded slash, a symlink placed in the folder, a subfolder — each is simply not one of the
// names, and 404.
//
// Every answer carries a strict Content-Security-Policy (scripts and styles from this origin
// only, no inline script, nothing framed, no plugin; images from this origin and, when photo links
// are set, convoy-media's origin alone: checklists_api.h), X-Content-Type-Options: nosniff, no
// referrer, and Cache-Control: no-cache with a strong ETag (the files have no fingerprint in
// their names, so a browser revalidates, and gets 304 while they are unchanged).
#include <map>
#include <string>

#include "convoy/http.h"
#include "convoy/status.h"

namespace convoy::conversation {

struct ConsoleFile {
  std::string content_type;
  std::string body;
  std::string etag;  // "\"<sha256 hex of the body, first 32>\""
};

class ConsoleSite {
 public:
  // Reads `dir`; kNotFound when it is not a folder or has no index.html, kInvalidArgument for a
  // file too large (1 MiB each) or unreadable. Files of an unknown type are skipped.
  // `media_url`: convoy-media's public URL whose signed photo links the console shows (its origin
  // is added to img-src), or "" for none.
  static Result<ConsoleSite> Load(const std::string& dir, const std::string& media_url = "");
  // GET/HEAD under /console: /console → 301 /console/; /console/ → index.html; /console/<name>.
  HttpResponse Serve(const HttpRequest& request) const;
  size_t size() const { return files_.size(); }

 private:
  std::map<std::string, ConsoleFile> files_;
  std::string img_origin_;
};

// "http://host:port" of a URL ("" when it is not an http(s) URL with a plain host).
std::string OriginOf(const std::string& url);
// The headers every console answer carries (a 404 included); `img_origin`: one more origin
// images may come from, or "".
void AddConsoleHeaders(HttpResponse& response, const std::string& img_origin = "");

}  // namespace convoy::conversation
