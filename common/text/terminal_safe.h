// Text from outside made safe to print on a terminal.
//
// Much of what jobctl prints was written by someone else: a submitter's
// name, a job's function, arguments and target, a minion's id and grains,
// a relay's name, an error text that quotes any of these, and above all a
// job's stdout and stderr. A terminal acts on some of those bytes: ESC
// starts a control sequence (ESC[2J clears the screen, OSC 8 turns text
// into a link, OSC 52 writes the clipboard, some terminals answer a query
// by typing into the shell), \r returns the cursor so the next bytes
// overwrite what was printed, and C1 controls do the same as ESC sequences
// in one character (0x9B is CSI), raw or UTF-8 encoded. Unicode bidi
// controls reorder what is shown ("Trojan Source").
//
// These functions keep well-formed printable UTF-8 as it is and make every
// such byte visible instead: each byte of a C0 control (0x00-0x1F), DEL,
// a C1 control (U+0080-U+009F) or a byte that is not well-formed UTF-8
// becomes `\xNN` (two lowercase hex digits; ESC is `\x1b`), and a bidi
// control or U+2028/U+2029 becomes `\uNNNN`. Nothing a terminal acts on
// reaches it. The escaping is not reversible (a literal "\x1b" looks the
// same as an escaped ESC); jobctl's --raw and --json give the exact bytes.
#ifndef MUSTER_COMMON_TEXT_TERMINAL_SAFE_H_
#define MUSTER_COMMON_TEXT_TERMINAL_SAFE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace muster {

// One field printed on a line or in a table column (a name, an id, an
// argument, an error text): every control character is escaped, \n and \t
// too, so the field cannot break the layout around it.
std::string TerminalSafe(absl::string_view bytes);

// A block of output printed on lines of its own (a job's stdout or
// stderr): as TerminalSafe, but \n and \t are kept. \r is escaped.
std::string TerminalSafeBlock(absl::string_view bytes);

// JSON text as an encoder wrote it (control characters below 0x20 in
// strings already escaped, as JSON requires) with DEL, C1 controls, bidi
// controls and U+2028/U+2029 also written as \u00NN / \uNNNN escapes, which
// JSON allows for any character: the same JSON value, with nothing in it a
// terminal acts on. Bytes that are not well-formed UTF-8 are left as they
// are (valid JSON holds none).
std::string TerminalSafeJson(absl::string_view json);

}  // namespace muster

#endif  // MUSTER_COMMON_TEXT_TERMINAL_SAFE_H_
