#pragma once
// A small PDF 1.4 writer for exports (a completed checklist's answers with their photos: issue
// 30): A4 pages of wrapped text in the standard Helvetica fonts and JPEG photos embedded as they
// are (DCTDecode: the bytes are the file's, never decoded or re-encoded here). No dependency, no
// font file: the standard fonts are every viewer's. Text is Latin-1 (WinAnsiEncoding); another
// character is written as '?'. Pure: no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convoy/status.h"

namespace convoy::conversation {

// What a PDF needs of a JPEG to embed it: its size in pixels and colour components (1 gray, 3
// RGB/YCbCr, 4 CMYK), from its first SOF marker; nothing when the bytes are not a JPEG it can
// read (a truncated file, a lossless or arithmetic-coded one, 12-bit samples).
struct JpegInfo {
  int width = 0, height = 0, components = 0;
};
std::optional<JpegInfo> ReadJpegInfo(std::string_view bytes);

class PdfDocument {
 public:
  PdfDocument();
  // A bold 14 pt line (wrapped when long), or 10 pt text wrapped at the margins; "\n" breaks it.
  void Heading(const std::string& utf8);
  void Text(const std::string& utf8, bool bold = false);
  void Space(double points);
  // A JPEG at most max_width x max_height points, its aspect kept, on a new page when it does not
  // fit on this one; kInvalidArgument (nothing added) when ReadJpegInfo cannot read it.
  Status Jpeg(const std::string& bytes, double max_width, double max_height);
  // The whole file; `title` goes into its document information. Call once.
  std::string Finish(const std::string& title);
  int pages() const { return static_cast<int>(pages_.size()); }

  static constexpr double kWidth = 595, kHeight = 842, kMargin = 50;  // A4 in points

 private:
  struct Image {
    std::string bytes;
    JpegInfo info;
  };
  void NewPage();
  void Line(const std::string& latin1, double size, bool bold);
  void NeedSpace(double points);
  std::vector<std::string> pages_;             // each page's content stream
  std::vector<std::vector<int>> page_images_;  // indexes into images_
  std::vector<Image> images_;
  double y_ = 0;  // the next line's baseline
};

}  // namespace convoy::conversation
