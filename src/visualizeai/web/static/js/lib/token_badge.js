// What the model saw, next to a token's label in lists: a small badge ("[UNK]" for the unknown token, "≠" where
// the model read another form than the text shows) whose title is the token's facts line (lib/tokens.js).

import { tokenFacts, tokenFactsLine } from "./tokens.js";

/** The badge of `token` (a TokenInfo, or a candidate mapped to one), or null when what is shown is what it saw. */
export function tokenBadge(token) {
  const facts = tokenFacts(token);
  if (!facts.differs) return null;
  const badge = document.createElement("span");
  badge.className = "tok-badge";
  badge.textContent = facts.unknown ? "[UNK]" : "≠";
  badge.title = tokenFactsLine(token);
  badge.dataset.badge = facts.unknown ? "unknown" : "differs";
  return badge;
}

/** The badge's text for plain-text lists (an <option>): " [UNK]", " ≠" or "". */
export function tokenBadgeText(token) {
  const facts = tokenFacts(token);
  return facts.unknown ? " [UNK]" : facts.differs ? " ≠" : "";
}
