// Unit: the PDF writer's files are what a reader needs: every xref entry points at its object, the
// trailer at the xref, the page tree counts the pages there are, and each JPEG is embedded whole
// with its size and colour components; and the JPEG reader refuses what DCTDecode cannot show.
#include "api/pdf.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "testsupport.h"

namespace convoy::conversation {
namespace {

// The file's objects by number, each checked to start where the xref says it does.
struct Parsed {
  std::map<int, std::string> objects;
  int declared_size = 0;
};

Parsed ParseChecked(const std::string& pdf) {
  Parsed out;
  EXPECT_EQ(pdf.rfind("%PDF-1.4\n", 0), 0u);
  EXPECT_EQ(pdf.substr(pdf.size() - 6), "%%EOF\n");
  const size_t sx = pdf.rfind("startxref\n");
  EXPECT_NE(sx, std::string::npos);
  const size_t xref = std::stoul(pdf.substr(sx + 10));
  EXPECT_EQ(pdf.compare(xref, 5, "xref\n"), 0) << "startxref points at the xref table";
  std::smatch m;
  const std::string head = pdf.substr(xref, 40);
  EXPECT_TRUE(std::regex_search(head, m, std::regex("^xref\n0 (\\d+)\n")));
  const int count = std::stoi(m[1]);
  size_t at = xref + m[0].length();
  EXPECT_EQ(pdf.compare(at, 20, "0000000000 65535 f \n"), 0);
  for (int i = 1; i < count; ++i) {
    const std::string entry = pdf.substr(at + 20 * static_cast<size_t>(i), 20);
    EXPECT_TRUE(std::regex_match(entry, std::regex("\\d{10} 00000 n \n"))) << entry;
    const size_t offset = std::stoul(entry.substr(0, 10));
    const std::string start = std::to_string(i) + " 0 obj\n";
    EXPECT_EQ(pdf.compare(offset, start.size(), start), 0) << "object " << i << " at " << offset;
    const size_t end = pdf.find("\nendobj\n", offset);
    EXPECT_NE(end, std::string::npos);
    out.objects[i] = pdf.substr(offset + start.size(), end - offset - start.size());
  }
  const size_t trailer = pdf.find("trailer\n<< /Size ", xref);
  EXPECT_NE(trailer, std::string::npos);
  out.declared_size = std::stoi(pdf.substr(trailer + 17));
  EXPECT_EQ(out.declared_size, count);
  return out;
}

int CountOf(const std::map<int, std::string>& objects, const std::string& what) {
  int n = 0;
  for (const auto& [id, body] : objects) n += body.find(what) != std::string::npos ? 1 : 0;
  return n;
}

// The smallest JPEG header ReadJpegInfo reads: SOI, a frame (SOFn) and EOI.
std::string JpegHeader(unsigned char sof, int width, int height, int components,
                       int precision = 8) {
  std::string j = "\xFF\xD8";
  j += "\xFF\xE0";
  j += std::string("\x00\x04\x00\x00", 4);  // an APP0 of 2 bytes after its length
  j += '\xFF';
  j += static_cast<char>(sof);
  j += std::string("\x00\x0B", 2);
  j += static_cast<char>(precision);
  j += static_cast<char>(height >> 8);
  j += static_cast<char>(height & 0xFF);
  j += static_cast<char>(width >> 8);
  j += static_cast<char>(width & 0xFF);
  j += static_cast<char>(components);
  j += std::string("\x01\x11\x00", 3);
  return j + "\xFF\xD9";
}

TEST(Pdf, EveryXrefEntryPointsAtItsObjectAndThePhotosAreEmbeddedWhole) {
  const std::string photo = test::ReadFile(test::FixturePath("media/photo1.jpg"));
  const auto info = ReadJpegInfo(photo);
  ASSERT_TRUE(info);
  EXPECT_GT(info->width, 0);
  EXPECT_EQ(info->components, 3);
  PdfDocument doc;
  doc.Heading("Line QA (version 2)");
  doc.Text("naïve café, 漢字 and (parens) \\");
  for (int i = 0; i < 3; ++i) {
    doc.Text(std::to_string(i + 1) + ". Is the press guard closed? " + std::string(400, 'x'), true);
    ASSERT_TRUE(doc.Jpeg(photo, 240, 300).ok());
  }
  EXPECT_FALSE(doc.Jpeg("\x89PNG\r\n", 240, 300).ok()) << "a PNG is not embedded as a JPEG";
  const std::string pdf = doc.Finish("Line QA");
  const Parsed parsed = ParseChecked(pdf);
  const int pages = CountOf(parsed.objects, "/Type /Page ");
  EXPECT_EQ(pages, doc.pages());
  EXPECT_GE(pages, 2) << "three 300 pt photos do not fit one A4 page";
  EXPECT_NE(parsed.objects.at(2).find("/Count " + std::to_string(pages) + " >>"), std::string::npos)
      << parsed.objects.at(2);
  EXPECT_EQ(CountOf(parsed.objects, "/Subtype /Image"), 3);
  EXPECT_EQ(CountOf(parsed.objects, "/Filter /DCTDecode /Length " + std::to_string(photo.size())),
            3);
  for (const auto& [id, body] : parsed.objects) {
    if (body.find("/Subtype /Image") == std::string::npos) continue;
    EXPECT_NE(body.find("/Width " + std::to_string(info->width) + " /Height " +
                        std::to_string(info->height) + " /ColorSpace /DeviceRGB"),
              std::string::npos);
    EXPECT_NE(body.find("stream\n" + photo + "\nendstream"), std::string::npos)
        << "object " << id << " holds the JPEG's bytes as they are";
  }
  // Each content stream's length is its own, and the text is escaped and Latin-1.
  for (const auto& [id, body] : parsed.objects) {
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("^<< /Length (\\d+) >>\nstream\n"))) continue;
    const size_t length = std::stoul(m[1]);
    EXPECT_EQ(body.compare(m[0].length() + length, 10, "\nendstream"), 0) << "object " << id;
  }
  EXPECT_NE(pdf.find("(na\xEFve caf\xE9, ?? and \\(parens\\) \\\\) Tj"), std::string::npos)
      << "Latin-1 kept, another character '?', ( ) and \\ escaped";
}

TEST(Pdf, AnEmptyDocumentIsOnePageAndStillAValidFile) {
  PdfDocument doc;
  const Parsed parsed = ParseChecked(doc.Finish("nothing"));
  EXPECT_EQ(CountOf(parsed.objects, "/Type /Page "), 1);
  EXPECT_EQ(CountOf(parsed.objects, "/Subtype /Image"), 0);
}

TEST(Pdf, TheJpegReaderTakesWhatDctDecodeShowsAndNothingElse) {
  auto rgb = ReadJpegInfo(JpegHeader(0xC0, 640, 480, 3));
  ASSERT_TRUE(rgb);
  EXPECT_EQ(rgb->width, 640);
  EXPECT_EQ(rgb->height, 480);
  auto gray = ReadJpegInfo(JpegHeader(0xC2, 10, 20, 1));  // progressive
  ASSERT_TRUE(gray);
  EXPECT_EQ(gray->components, 1);
  EXPECT_TRUE(ReadJpegInfo(JpegHeader(0xC0, 10, 20, 4)));  // CMYK
  EXPECT_FALSE(ReadJpegInfo(JpegHeader(0xC3, 10, 20, 3))) << "lossless";
  EXPECT_FALSE(ReadJpegInfo(JpegHeader(0xC9, 10, 20, 3))) << "arithmetic-coded";
  EXPECT_FALSE(ReadJpegInfo(JpegHeader(0xC0, 10, 20, 3, 12))) << "12-bit samples";
  EXPECT_FALSE(ReadJpegInfo(JpegHeader(0xC0, 0, 20, 3))) << "no width";
  EXPECT_FALSE(ReadJpegInfo(JpegHeader(0xC0, 10, 20, 2)));
  const std::string whole = JpegHeader(0xC0, 640, 480, 3);
  EXPECT_FALSE(ReadJpegInfo(whole.substr(0, 12))) << "cut before its frame";
  EXPECT_FALSE(ReadJpegInfo("\x89PNG\r\n\x1a\n"));
  EXPECT_FALSE(ReadJpegInfo(""));
}

}  // namespace
}  // namespace convoy::conversation
