// HTTP request heads: where a head ends, what a well-formed one parses to, and the status
// each malformed one is refused with (one table), and the response head's exact bytes.
#include "net/http_parse.h"

#include <gtest/gtest.h>

namespace mica::net {
namespace {

TEST(HttpParse, AHeadEndsAtItsFirstEmptyLineAfterTheRequestLine) {
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), 0u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"), 27u);
  EXPECT_EQ(find_head_end("GET / HTTP/1.1\nHost: a\n\n"), 24u);  // bare LF line ends
  // Empty lines before the request line (a client's stray CRLF) do not end it.
  EXPECT_EQ(find_head_end("\r\n\r\n"), 0u);
  EXPECT_EQ(find_head_end("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 29u);
}

TEST(HttpParse, AWellFormedHeadGivesMethodPathVersionAndConnection) {
  HttpParseResult r = parse_request_head(
      "\r\nGET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nconnection:  Keep-Alive, CLOSE \r\n"
      "Accept: */*\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.reason;
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.path, "/metrics");
  EXPECT_EQ(r.head.version_minor, 1);
  EXPECT_TRUE(r.head.close_requested);
  EXPECT_EQ(r.head.content_length, 0u);
  EXPECT_FALSE(r.head.chunked);

  HttpParseResult old = parse_request_head("HEAD http://h:9/health HTTP/1.0\r\n\r\n");
  ASSERT_EQ(old.status, 0) << old.reason;
  EXPECT_EQ(old.head.path, "/health");  // absolute-form
  EXPECT_EQ(old.head.version_minor, 0);
  EXPECT_TRUE(old.head.close_requested);  // HTTP/1.0 closes

  HttpParseResult keep = parse_request_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(keep.status, 0);
  EXPECT_FALSE(keep.head.close_requested);
}

TEST(HttpParse, BodiesAreReportedForTheServerToRefuse) {
  HttpParseResult sized =
      parse_request_head("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n");
  ASSERT_EQ(sized.status, 0);
  EXPECT_EQ(sized.head.content_length, 12u);
  HttpParseResult chunked =
      parse_request_head("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_EQ(chunked.status, 0);
  EXPECT_TRUE(chunked.head.chunked);
}

TEST(HttpParse, MalformedHeadsAreRefusedWithTheirStatus) {
  struct Case {
    const char* head;
    int status;
  };
  const Case cases[] = {
      {"\r\n\r\n", 400},                                      // no request line
      {"GET /\r\n\r\n", 400},                                 // no version
      {"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 400},           // three spaces
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},             // method not a token
      {"GET metrics HTTP/1.1\r\nHost: h\r\n\r\n", 400},       // not a path
      {"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},      // other scheme
      {"GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},        // control in target
      {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},             // version digits
      {"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", 400},            // version name
      {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},             // not HTTP/1.x
      {"GET / HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two Hosts
      {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400},  // obs-fold
      {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},  // no colon
      {"GET / HTTP/1.1\r\nHost: h\r\nA b: c\r\n\r\n", 400},   // name not a token
      {"GET / HTTP/1.1\r\nHost: h\r\n: c\r\n\r\n", 400},      // empty name
      {"GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", 400},         // DEL in a value
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},       // bare CR
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1e3\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    HttpParseResult r = parse_request_head(c.head);
    EXPECT_EQ(r.status, c.status) << "head: " << c.head;
    EXPECT_FALSE(r.reason.empty()) << "head: " << c.head;
  }
}

TEST(HttpParse, AResponseHeadNamesTypeLengthAndClose) {
  EXPECT_EQ(render_response_head(200, "text/plain", 3, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(render_response_head(405, "text/plain", 0, true, "Allow: GET, HEAD\r\n"),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
            "Allow: GET, HEAD\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace mica::net
