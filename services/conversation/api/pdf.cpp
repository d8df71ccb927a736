#include "api/pdf.h"

#include <algorithm>
#include <cstdio>

namespace convoy::conversation {

namespace {

constexpr double kBodySize = 10, kHeadingSize = 14, kLeading = 1.35;

// UTF-8 to Latin-1 (what WinAnsiEncoding shares with it); anything else, and a malformed
// sequence, is '?'. Control characters other than '\n' are dropped.
std::string Latin1(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size();) {
    const unsigned char c = static_cast<unsigned char>(utf8[i]);
    uint32_t cp = 0;
    size_t n = 0;
    if (c < 0x80) {
      cp = c, n = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F, n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F, n = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07, n = 4;
    } else {
      out += '?';
      ++i;
      continue;
    }
    bool ok = i + n <= utf8.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(utf8[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    i += ok ? n : 1;
    if (!ok || (cp >= 0x80 && cp < 0xA0) || cp > 0xFF) {
      out += '?';
    } else if (cp == '\n' || cp >= 0x20) {
      out += static_cast<char>(cp);
    }
  }
  return out;
}

// Helvetica's widths rounded up (per 1000 of the size): a line measured with them never runs
// past the margin.
double Width(const std::string& latin1, double size, bool bold) {
  double w = 0;
  for (unsigned char c : latin1) {
    if (c == ' ') {
      w += 278;
    } else if (c == 'm' || c == 'w' || c == 'M' || c == 'W' || c == '@') {
      w += 1015;
    } else if ((c >= 'A' && c <= 'Z') || c >= 0xC0) {
      w += 778;
    } else {
      w += 611;
    }
  }
  return w * size / 1000 * (bold ? 1.05 : 1.0);
}

// A string in a content stream: ( ) and \ escaped, bytes kept.
std::string PdfString(const std::string& latin1) {
  std::string out = "(";
  for (char c : latin1) {
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    out += c;
  }
  return out + ")";
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

uint16_t Be16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<unsigned char>(b[at]) << 8) |
                               static_cast<unsigned char>(b[at + 1]));
}

}  // namespace

std::optional<JpegInfo> ReadJpegInfo(std::string_view b) {
  if (b.size() < 4 || static_cast<unsigned char>(b[0]) != 0xFF ||
      static_cast<unsigned char>(b[1]) != 0xD8)
    return std::nullopt;
  size_t at = 2;
  while (at + 4 <= b.size()) {
    if (static_cast<unsigned char>(b[at]) != 0xFF) return std::nullopt;
    const unsigned char marker = static_cast<unsigned char>(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      at += 2;  // no length
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // no frame before the scan
    const size_t length = Be16(b, at + 2);
    if (length < 2 || at + 2 + length > b.size()) return std::nullopt;
    // Baseline (C0), extended (C1) and progressive (C2) Huffman frames: what DCTDecode reads.
    if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) {
      if (length < 8) return std::nullopt;
      const unsigned char precision = static_cast<unsigned char>(b[at + 4]);
      JpegInfo info{Be16(b, at + 7), Be16(b, at + 5), static_cast<unsigned char>(b[at + 9])};
      if (precision != 8 || info.width == 0 || info.height == 0 ||
          (info.components != 1 && info.components != 3 && info.components != 4))
        return std::nullopt;
      return info;
    }
    if (marker >= 0xC3 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
      return std::nullopt;  // lossless, hierarchical or arithmetic-coded
    at += 2 + length;
  }
  return std::nullopt;
}

PdfDocument::PdfDocument() { NewPage(); }

void PdfDocument::NewPage() {
  pages_.emplace_back();
  page_images_.emplace_back();
  y_ = kHeight - kMargin;
}

void PdfDocument::NeedSpace(double points) {
  if (y_ - points < kMargin) NewPage();
}

void PdfDocument::Line(const std::string& latin1, double size, bool bold) {
  NeedSpace(size * kLeading);
  y_ -= size;
  pages_.back() += "BT /" + std::string(bold ? "F2 " : "F1 ") + Num(size) + " Tf " + Num(kMargin) +
                   " " + Num(y_) + " Td " + PdfString(latin1) + " Tj ET\n";
  y_ -= size * (kLeading - 1);
}

void PdfDocument::Text(const std::string& utf8, bool bold) {
  const double size = kBodySize;
  const double room = kWidth - 2 * kMargin;
  const std::string text = Latin1(utf8);
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    const std::string para = text.substr(start, nl == std::string::npos ? nl : nl - start);
    start = nl == std::string::npos ? text.size() + 1 : nl + 1;
    std::string line;
    size_t i = 0;
    while (i < para.size()) {
      size_t end = para.find(' ', i);
      if (end == std::string::npos) end = para.size();
      std::string word = para.substr(i, end - i);
      i = end + 1;
      std::string candidate = line.empty() ? word : line + " " + word;
      if (Width(candidate, size, bold) <= room) {
        line = candidate;
        continue;
      }
      if (!line.empty()) Line(line, size, bold);
      line.clear();
      // A word wider than the line is cut where it must be.
      while (Width(word, size, bold) > room) {
        size_t fit = 1;
        while (fit < word.size() && Width(word.substr(0, fit + 1), size, bold) <= room) ++fit;
        Line(word.substr(0, fit), size, bold);
        word = word.substr(fit);
      }
      line = word;
    }
    Line(line, size, bold);
  }
}

void PdfDocument::Heading(const std::string& utf8) {
  const std::string text = Latin1(utf8);
  const double room = kWidth - 2 * kMargin;
  std::string line;
  size_t i = 0;
  while (i <= text.size()) {
    size_t end = text.find_first_of(" \n", i);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(i, end - i);
    i = end + 1;
    const std::string candidate = line.empty() ? word : line + " " + word;
    if (Width(candidate, kHeadingSize, true) > room && !line.empty()) {
      Line(line, kHeadingSize, true);
      line = word;
    } else {
      line = candidate;
    }
  }
  Line(line, kHeadingSize, true);
}

void PdfDocument::Space(double points) {
  if (y_ - points < kMargin) {
    NewPage();
    return;
  }
  y_ -= points;
}

Status PdfDocument::Jpeg(const std::string& bytes, double max_width, double max_height) {
  auto info = ReadJpegInfo(bytes);
  if (!info) return Status(Code::kInvalidArgument, "not a JPEG a PDF can embed");
  max_width = std::min(max_width, kWidth - 2 * kMargin);
  max_height = std::min(max_height, kHeight - 2 * kMargin);
  const double scale = std::min(max_width / info->width, max_height / info->height);
  const double w = info->width * scale, h = info->height * scale;
  NeedSpace(h);
  y_ -= h;
  images_.push_back({bytes, *info});
  const int index = static_cast<int>(images_.size());
  page_images_.back().push_back(index - 1);
  pages_.back() += "q " + Num(w) + " 0 0 " + Num(h) + " " + Num(kMargin) + " " + Num(y_) +
                   " cm /Im" + std::to_string(index) + " Do Q\n";
  y_ -= kBodySize * (kLeading - 1);
  return Status::Ok();
}

std::string PdfDocument::Finish(const std::string& title) {
  // Objects: 1 catalog, 2 pages, 3 and 4 the fonts, 5 the information, then the images, then
  // each page and its content stream.
  std::vector<std::string> objects(5);
  objects[0] = "<< /Type /Catalog /Pages 2 0 R >>";
  objects[2] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";
  objects[3] =
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>";
  objects[4] = "<< /Title " + PdfString(Latin1(title)) + " /Producer (convoy) >>";
  const int first_image = static_cast<int>(objects.size()) + 1;
  for (const auto& im : images_) {
    const char* space = im.info.components == 1   ? "/DeviceGray"
                        : im.info.components == 4 ? "/DeviceCMYK /Decode [1 0 1 0 1 0 1 0]"
                                                  : "/DeviceRGB";
    objects.push_back("<< /Type /XObject /Subtype /Image /Width " + std::to_string(im.info.width) +
                      " /Height " + std::to_string(im.info.height) + " /ColorSpace " + space +
                      " /BitsPerComponent 8 /Filter /DCTDecode /Length " +
                      std::to_string(im.bytes.size()) + " >>\nstream\n" + im.bytes + "\nendstream");
  }
  std::string kids;
  for (size_t p = 0; p < pages_.size(); ++p) {
    const int page = static_cast<int>(objects.size()) + 1;
    std::string xobjects;
    for (int i : page_images_[p]) {
      xobjects += " /Im" + std::to_string(i + 1) + " " + std::to_string(first_image + i) + " 0 R";
    }
    objects.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + Num(kWidth) + " " +
                      Num(kHeight) + "] /Resources << /Font << /F1 3 0 R /F2 4 0 R >>" +
                      (xobjects.empty() ? "" : " /XObject <<" + xobjects + " >>") +
                      " >> /Contents " + std::to_string(page + 1) + " 0 R >>");
    objects.push_back("<< /Length " + std::to_string(pages_[p].size()) + " >>\nstream\n" +
                      pages_[p] + "\nendstream");
    kids += (kids.empty() ? "" : " ") + std::to_string(page) + " 0 R";
  }
  objects[1] =
      "<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages_.size()) + " >>";
  // A binary comment after the header tells transfer tools the file is binary.
  std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t offset : offsets) {
    char entry[24];
    std::snprintf(entry, sizeof entry, "%010zu 00000 n \n", offset);
    out += entry;
  }
  out += "trailer\n<< /Size " + std::to_string(objects.size() + 1) +
         " /Root 1 0 R /Info 5 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return out;
}

}  // namespace convoy::conversation
