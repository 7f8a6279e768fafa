// Message serialization: plain structs declared once, encoded little-endian and
// schema-evolvable.
//
// A message is a struct with a field list:
//
//   struct ReadRequest {
//     uint64_t chunk = 0;
//     std::string note;
//     MICA_FIELDS(ReadRequest, chunk, note)
//   };
//
// which gives encode(), decode(), fmt printing ("ReadRequest{chunk: 7, note: "x"}") and ==.
// Wire format of a message: u32 body length, then each field in declaration order.
// Integers and enums are fixed-width little-endian (an enum value outside its declared
// range is refused), bool one byte (0 or 1), strings and byte vectors a u32 length and the
// bytes, vectors a u32 count and the elements, optionals a presence byte and the value,
// nested messages a message. Fields are only ever appended:
// an old reader skips a body's unknown tail, a new reader leaves fields missing from an
// old body at their defaults. Decoding checks every bound, never allocates more than the
// input could hold, and reports any violation as kProtocolError. Pure functions:
// thread-safe, never suspend.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "async/status.h"

namespace mica::net {

template <class C, class M>
struct Field {
  const char* name;
  M C::*member;
};
// clang 14 has no deduction for aggregates.
template <class C, class M>
Field(const char*, M C::*) -> Field<C, M>;

template <class T>
concept Message = requires {
  T::mica_fields();
};

// ---- writer ----

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  void bytes(const void* data, size_t n) {
    auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  template <class I>
  void integer(I value) {
    static_assert(std::is_integral_v<I>);
    using U = std::make_unsigned_t<I>;
    U u = static_cast<U>(value);
    std::array<std::byte, sizeof(I)> le;
    for (size_t i = 0; i < sizeof(I); ++i) le[i] = std::byte((u >> (8 * i)) & 0xff);
    bytes(le.data(), le.size());
  }
  size_t size() const { return out_.size(); }
  // Overwrites a u32 written earlier at `at` (length prefixes).
  void patch_u32(size_t at, uint32_t value) {
    for (size_t i = 0; i < 4; ++i) out_[at + i] = std::byte((value >> (8 * i)) & 0xff);
  }

 private:
  std::vector<std::byte>& out_;
};

// ---- reader ----

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  size_t remaining() const { return in_.size() - position_; }
  bool failed() const { return failed_; }
  // Marks the input malformed; every later read fails too.
  void fail(const char* why) {
    if (!failed_) why_ = why;
    failed_ = true;
  }
  const char* why() const { return why_; }

  bool take(void* out, size_t n) {
    if (failed_ || n > remaining()) {
      fail("truncated");
      return false;
    }
    std::memcpy(out, in_.data() + position_, n);
    position_ += n;
    return true;
  }
  template <class I>
  I integer() {
    std::array<std::byte, sizeof(I)> le{};
    if (!take(le.data(), le.size())) return I{};
    std::make_unsigned_t<I> u = 0;
    for (size_t i = 0; i < sizeof(I); ++i) u |= std::make_unsigned_t<I>(le[i]) << (8 * i);
    return static_cast<I>(u);
  }
  std::span<const std::byte> view(size_t n) {
    if (failed_ || n > remaining()) {
      fail("truncated");
      return {};
    }
    auto s = in_.subspan(position_, n);
    position_ += n;
    return s;
  }
  void skip(size_t n) { (void)view(n); }

 private:
  std::span<const std::byte> in_;
  size_t position_ = 0;
  bool failed_ = false;
  const char* why_ = "";
};

// ---- per-type codecs ----

template <class T>
struct Codec;

template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct Codec<T> {
  static constexpr size_t kMinBytes = sizeof(T);
  static void encode(Writer& w, const T& v) { w.integer(v); }
  static void decode(Reader& r, T& v) { v = r.integer<T>(); }
};

template <>
struct Codec<bool> {
  static constexpr size_t kMinBytes = 1;
  static void encode(Writer& w, bool v) { w.integer<uint8_t>(v ? 1 : 0); }
  static void decode(Reader& r, bool& v) {
    uint8_t b = r.integer<uint8_t>();
    if (b > 1) r.fail("bool is neither 0 nor 1");
    v = b == 1;
  }
};

// An enum in a message declares which values are valid, next to its definition:
// MICA_ENUM_RANGE(Color, kRed, kBlue) for a contiguous range, or a hand-written
// `constexpr bool mica_enum_valid(Color)` found by argument-dependent lookup for one with
// gaps. Decoding any other value is an error (a switch over the enum would otherwise meet
// a value it does not handle).
template <class T>
concept CheckedEnum = std::is_enum_v<T> && requires(T v) {
  { mica_enum_valid(v) } -> std::same_as<bool>;
};
// std::byte is an enum too, with every value valid.
template <class T>
concept ByteEnum = std::is_same_v<T, std::byte>;

template <class T>
requires std::is_enum_v<T>
struct Codec<T> {
  static_assert(CheckedEnum<T> || ByteEnum<T>,
                "an enum in a message needs MICA_ENUM_RANGE or mica_enum_valid");
  using U = std::underlying_type_t<T>;
  static constexpr size_t kMinBytes = sizeof(U);
  static void encode(Writer& w, const T& v) { w.integer(static_cast<U>(v)); }
  static void decode(Reader& r, T& v) {
    v = static_cast<T>(r.integer<U>());
    if constexpr (!ByteEnum<T>) {
      if (!r.failed() && !mica_enum_valid(v)) r.fail("enum value out of range");
    }
  }
};

template <>
struct Codec<std::string> {
  static constexpr size_t kMinBytes = 4;
  static void encode(Writer& w, const std::string& v) {
    w.integer(static_cast<uint32_t>(v.size()));
    w.bytes(v.data(), v.size());
  }
  static void decode(Reader& r, std::string& v) {
    uint32_t n = r.integer<uint32_t>();
    auto bytes = r.view(n);  // fails before allocating when n exceeds the input
    v.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

template <class T>
struct Codec<std::vector<T>> {
  static constexpr size_t kMinBytes = 4;
  static void encode(Writer& w, const std::vector<T>& v) {
    w.integer(static_cast<uint32_t>(v.size()));
    if constexpr (std::is_same_v<T, std::byte> || std::is_same_v<T, uint8_t>) {
      w.bytes(v.data(), v.size());
    } else {
      for (const T& item : v) Codec<T>::encode(w, item);
    }
  }
  static void decode(Reader& r, std::vector<T>& v) {
    uint32_t n = r.integer<uint32_t>();
    // Every element takes at least kMinBytes, so a count the input cannot hold is refused
    // before anything is allocated.
    if (r.failed() || uint64_t(n) * Codec<T>::kMinBytes > r.remaining()) {
      r.fail("vector count exceeds the input");
      return;
    }
    v.clear();
    if constexpr (std::is_same_v<T, std::byte> || std::is_same_v<T, uint8_t>) {
      auto bytes = r.view(n);
      v.assign(reinterpret_cast<const T*>(bytes.data()),
               reinterpret_cast<const T*>(bytes.data()) + bytes.size());
    } else {
      v.resize(n);
      for (T& item : v) {
        Codec<T>::decode(r, item);
        if (r.failed()) return;
      }
    }
  }
};

template <class T>
struct Codec<std::optional<T>> {
  static constexpr size_t kMinBytes = 1;
  static void encode(Writer& w, const std::optional<T>& v) {
    w.integer<uint8_t>(v ? 1 : 0);
    if (v) Codec<T>::encode(w, *v);
  }
  static void decode(Reader& r, std::optional<T>& v) {
    uint8_t present = r.integer<uint8_t>();
    if (present > 1) return r.fail("optional presence is neither 0 nor 1");
    if (!present) {
      v.reset();
      return;
    }
    v.emplace();
    Codec<T>::decode(r, *v);
  }
};

template <>
struct Codec<Status> {
  static constexpr size_t kMinBytes = 6;
  static void encode(Writer& w, const Status& s) {
    w.integer(static_cast<uint16_t>(s.code()));
    std::string message(s.message());
    Codec<std::string>::encode(w, message);
  }
  static void decode(Reader& r, Status& s) {
    auto code = static_cast<StatusCode>(r.integer<uint16_t>());
    std::string message;
    Codec<std::string>::decode(r, message);
    s = code == StatusCode::kOk ? Status() : Status(code, std::move(message));
  }
};

// Messages: u32 body length, then the fields.
template <Message T>
struct Codec<T> {
  static constexpr size_t kMinBytes = 4;
  static void encode(Writer& w, const T& v) {
    size_t at = w.size();
    w.integer<uint32_t>(0);
    std::apply(
        [&](const auto&... f) { (Codec<member_t<decltype(f)>>::encode(w, v.*f.member), ...); },
        T::mica_fields());
    w.patch_u32(at, static_cast<uint32_t>(w.size() - at - 4));
  }
  static void decode(Reader& outer, T& v) {
    uint32_t n = outer.integer<uint32_t>();
    Reader body(outer.view(n));
    if (outer.failed()) return;
    // Fields missing at the end of an older body keep their defaults; an unknown tail
    // written by a newer sender is ignored.
    std::apply(
        [&](const auto&... f) {
          ((body.remaining() > 0 && !body.failed()
                ? Codec<member_t<decltype(f)>>::decode(body, v.*f.member)
                : void()),
           ...);
        },
        T::mica_fields());
    if (body.failed()) outer.fail(body.why());
  }
  template <class F>
  using member_t = std::remove_cvref_t<decltype(std::declval<T&>().*(std::declval<F>().member))>;
};

// ---- entry points ----

template <Message T>
void encode_into(const T& message, std::vector<std::byte>& out) {
  Writer w(out);
  Codec<T>::encode(w, message);
}

template <Message T>
std::vector<std::byte> encode(const T& message) {
  std::vector<std::byte> out;
  encode_into(message, out);
  return out;
}

// Decodes exactly one message occupying all of `in`.
template <Message T>
Result<T> decode(std::span<const std::byte> in) {
  Reader r(in);
  T message{};
  Codec<T>::decode(r, message);
  if (!r.failed() && r.remaining() != 0) r.fail("bytes after the message");
  if (r.failed())
    return Status(StatusCode::kProtocolError, fmt::format("malformed message: {}", r.why()));
  return message;
}

// Decodes one message from the front of `in`; *consumed tells how many bytes it took.
template <Message T>
Result<T> decode_prefix(std::span<const std::byte> in, size_t* consumed) {
  Reader r(in);
  T message{};
  Codec<T>::decode(r, message);
  if (r.failed())
    return Status(StatusCode::kProtocolError, fmt::format("malformed message: {}", r.why()));
  *consumed = in.size() - r.remaining();
  return message;
}

}  // namespace mica::net

// ---- the field-list macro ----

#define MICA_FIELD_ENTRY(Type, name) \
  ::mica::net::Field {               \
#name, &Type::name               \
  }
#define MICA_FE_1(T, a) MICA_FIELD_ENTRY(T, a)
#define MICA_FE_2(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_1(T, __VA_ARGS__)
#define MICA_FE_3(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_2(T, __VA_ARGS__)
#define MICA_FE_4(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_3(T, __VA_ARGS__)
#define MICA_FE_5(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_4(T, __VA_ARGS__)
#define MICA_FE_6(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_5(T, __VA_ARGS__)
#define MICA_FE_7(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_6(T, __VA_ARGS__)
#define MICA_FE_8(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_7(T, __VA_ARGS__)
#define MICA_FE_9(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_8(T, __VA_ARGS__)
#define MICA_FE_10(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_9(T, __VA_ARGS__)
#define MICA_FE_11(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_10(T, __VA_ARGS__)
#define MICA_FE_12(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_11(T, __VA_ARGS__)
#define MICA_FE_13(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_12(T, __VA_ARGS__)
#define MICA_FE_14(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_13(T, __VA_ARGS__)
#define MICA_FE_15(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_14(T, __VA_ARGS__)
#define MICA_FE_16(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_15(T, __VA_ARGS__)
#define MICA_FE_17(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_16(T, __VA_ARGS__)
#define MICA_FE_18(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_17(T, __VA_ARGS__)
#define MICA_FE_19(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_18(T, __VA_ARGS__)
#define MICA_FE_20(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_19(T, __VA_ARGS__)
#define MICA_FE_21(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_20(T, __VA_ARGS__)
#define MICA_FE_22(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_21(T, __VA_ARGS__)
#define MICA_FE_23(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_22(T, __VA_ARGS__)
#define MICA_FE_24(T, a, ...) MICA_FIELD_ENTRY(T, a), MICA_FE_23(T, __VA_ARGS__)
#define MICA_FE_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, \
    _13, _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, NAME, ...) \
  NAME
#define MICA_FE(T, ...) \
  MICA_FE_PICK(__VA_ARGS__, MICA_FE_24, MICA_FE_23, MICA_FE_22, MICA_FE_21, MICA_FE_20, \
    MICA_FE_19, \
    MICA_FE_18, MICA_FE_17, MICA_FE_16, MICA_FE_15, MICA_FE_14, MICA_FE_13, \
    MICA_FE_12, MICA_FE_11, MICA_FE_10, MICA_FE_9, MICA_FE_8, MICA_FE_7, \
    MICA_FE_6, MICA_FE_5, MICA_FE_4, MICA_FE_3, MICA_FE_2, MICA_FE_1) \
  (T, __VA_ARGS__)

// Declares the valid values of an enum used in messages: first..last of its enumerators.
// Use at namespace scope, in the enum's namespace.
#define MICA_ENUM_RANGE(Type, first, last)                  \
  [[maybe_unused]] constexpr bool mica_enum_valid(Type v) { \
    using U = std::underlying_type_t<Type>;                 \
    return U(v) >= U(Type::first) && U(v) <= U(Type::last); \
  }

// Declares the field list of message Type (up to 24 fields, in wire order; append only).
#define MICA_FIELDS(Type, ...)                          \
  static constexpr auto mica_fields() {                 \
    return std::make_tuple(MICA_FE(Type, __VA_ARGS__)); \
  }                                                     \
  bool operator==(const Type&) const = default;

template <mica::net::Message T>
struct fmt::formatter<T> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class V>
  static void write_value(fmt::format_context& ctx, const V& v) {
    if constexpr (std::is_same_v<V, std::string>)
      fmt::format_to(ctx.out(), "\"{}\"", v);
    else if constexpr (std::is_same_v<V, bool>)
      fmt::format_to(ctx.out(), "{}", v);
    else if constexpr (std::is_enum_v<V>)
      fmt::format_to(ctx.out(), "{}", static_cast<std::underlying_type_t<V>>(v));
    else if constexpr (std::is_same_v<V, std::vector<std::byte>>)
      fmt::format_to(ctx.out(), "<{} bytes>", v.size());
    else if constexpr (requires {
                         typename V::value_type;
                         v.has_value();
                       }) {
      if (v)
        write_value(ctx, *v);
      else
        fmt::format_to(ctx.out(), "none");
    } else
      fmt::format_to(ctx.out(), "{}", v);
  }
  auto format(const T& message, fmt::format_context& ctx) const {
    fmt::format_to(ctx.out(), "{}{{", mica_type_name());
    bool first = true;
    std::apply(
        [&](const auto&... f) {
          ((fmt::format_to(ctx.out(), "{}{}: ", first ? "" : ", ", f.name),
            write_value(ctx, message.*f.member), first = false),
           ...);
        },
        T::mica_fields());
    return fmt::format_to(ctx.out(), "}}");
  }
  static std::string_view mica_type_name() {
    if constexpr (requires { T::kTypeName; })
      return T::kTypeName;
    else
      return "Message";
  }
};
