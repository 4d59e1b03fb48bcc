package flagserver

import "strings"

// Entity-tag comparison (RFC 9110 §13.1.2 and §8.8.3).
//
// The server's ETags are strong. A client may still send them back weak:
// a proxy that compresses a response weakens its ETag (W/"…"), and the
// client then sends that in If-None-Match. RFC 9110 has If-None-Match use
// the weak comparison (§13.1.2: "A recipient MUST use the weak comparison
// function when comparing entity tags for If-None-Match") and If-Match
// the strong one (§13.1.1), so:
//
//	current "abc"   If-None-Match: W/"abc"        → match (304)
//	current "abc"   If-Match: W/"abc"             → no match (412)
//
// A header is "*" or a comma-separated list of entity tags. For scripts
// that lose the quotes, an unquoted tag (abc) is read as "abc".

// etagMatchesWeak reports whether an If-None-Match header value matches
// the current ETag etag under the weak comparison: "*", or any listed tag
// whose opaque part equals etag's, weak or not.
func etagMatchesWeak(header, etag string) bool {
	return etagListMatches(header, etag, false)
}

// etagMatches reports whether an If-Match header value matches the
// current ETag etag under the strong comparison: "*", or a listed tag
// that is not weak and whose opaque part equals etag's.
func etagMatches(header, etag string) bool {
	return etagListMatches(header, etag, true)
}

func etagListMatches(header, etag string, strong bool) bool {
	want := strings.TrimPrefix(etag, "W/")
	if strong && len(want) != len(etag) {
		return false // a weak current ETag never matches strongly
	}
	rest := header
	for {
		tag, weak, next, ok := nextETag(rest)
		if !ok {
			return false
		}
		rest = next
		if tag == "*" {
			return true
		}
		if tag == want && !(strong && weak) {
			return true
		}
	}
}

// nextETag reads the next element of an entity-tag list: "*", or an
// entity-tag with its quotes (an unquoted tag gets them added), and
// whether it was weak. ok is false at the end of the list.
func nextETag(s string) (tag string, weak bool, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t,")
	if s == "" {
		return "", false, "", false
	}
	if strings.HasPrefix(s, "W/") {
		weak = true
		s = s[2:]
	}
	if strings.HasPrefix(s, `"`) {
		// etagc excludes DQUOTE, so the tag ends at the next one; a comma
		// inside the quotes belongs to the tag.
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			// Unterminated: the rest of the header is one (malformed)
			// tag that matches nothing.
			return "\x00", weak, "", true
		}
		tag, rest = s[:end+2], s[end+2:]
		return tag, weak, rest, true
	}
	end := strings.IndexByte(s, ',')
	if end < 0 {
		end = len(s)
	}
	tag, rest = strings.TrimSpace(s[:end]), s[end:]
	if tag == "*" && !weak {
		return "*", false, rest, true
	}
	return `"` + tag + `"`, weak, rest, true
}
