#pragma once
// What the console's Checklists screen (issue 30) reads beyond the assignment API of api.h:
//   GET /v1/checklists                      the checklists a caller may assign: the shared ones and
//                                           its tenant's own (a global token: all), each with its
//                                           latest version, title and question count
//   GET /v1/checklists/{id}[?version=N]     one checklist's versions and a version's definition
//                                           (the latest unless N is given)
//   GET /v1/assignments/{id}/export.csv     a completed assignment's answers as CSV (an
//   attachment):
//                                           question, answer, note, photo names, photo links
//   GET /v1/assignments/{id}/export.pdf     the same as a PDF (pdf.h): the title, who answered
//                                           and when, each question with its answer, its note
//                                           and its photos (JPEGs embedded as they are; another
//                                           type, or one media cannot give, is named and said
//                                           not to be embedded; X-Convoy-Photos counts both)
// An export of an assignment that is not completed is 409, of another tenant's or none 404.
// and the photos of an assignment's answers as links a browser may load.
//
// Photos: convoy-media serves a stored file to the media token, a named token's holder, or a
// signed, expiring link (convoy/crypto.h MediaLink). The console runs on this service's origin
// with its token in session storage, and an <img> cannot send a bearer token; so, when this service
// is given the media's public URL and the link secret (as outbound is), every photo of an answer
// shown to a caller who sees personal data carries "url": a link to that one file, expiring after
// a short TTL (--media_link_ttl_seconds). The token never goes into a URL, no photo crosses this
// service, and a link names only a photo of an assignment the caller's tenant may read. Without
// the URL and secret, photos have no "url" and the console says they cannot be shown.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "convoy/http.h"
#include "convoy/pg.h"

namespace convoy::conversation {

struct PhotoLinkSettings {
  std::string base_url;  // convoy-media's public URL (no trailing '/'); empty: no links
  std::string secret;    // the link secret convoy-media checks
  std::chrono::seconds ttl{900};
  std::function<int64_t()> now;  // unix seconds; unset: the system clock
  bool enabled() const { return !base_url.empty() && !secret.empty(); }
};

// A link to one stored photo ("<sha256 hex>.<ext>", the generator's own names alone) expiring after
// links.ttl; nothing when links are off or the name is not one of media's.
std::optional<std::string> PhotoLink(const PhotoLinkSettings& links,
                                     const std::string& stored_name);

// An assignment's JSON (api.cpp's kShow) with "url" added to every answer's photo that has a
// stored_name; unchanged when links are off or it has no photos.
std::string WithPhotoLinks(const std::string& assignment_json, const PhotoLinkSettings& links);

// A CSV cell: quoted when it must be, and a leading = + - @ (or tab, carriage return) defused with
// a ' so a spreadsheet never runs it as a formula.
std::string CsvCell(const std::string& value);

using TenantScope = std::optional<std::string>;
HttpResponse ListChecklists(PgConnection& db, const TenantScope& scope);
HttpResponse ShowChecklist(PgConnection& db, const std::string& id, const HttpRequest& r,
                           const TenantScope& scope);
HttpResponse ExportAssignmentCsv(PgConnection& db, const std::string& id, const TenantScope& scope,
                                 const PhotoLinkSettings& links);
// A stored photo's bytes, by its stored name.
using PhotoFetch = std::function<Result<std::string>(const std::string& stored_name)>;
HttpResponse ExportAssignmentPdf(PgConnection& db, const std::string& id, const TenantScope& scope,
                                 const PhotoFetch& fetch);
// Fetches from convoy-media at media_url (its internal URL, or the public one) through a signed
// link of a minute; null when either the URL or the link secret is not set (photos are then named
// in the PDF, not embedded).
PhotoFetch MediaPhotoFetch(const std::string& media_url, const PhotoLinkSettings& links);

}  // namespace convoy::conversation
