'use strict';

/** Turns a title into a URL slug: "Hello Big World" -> "hello-big-world". */
function slugify(title) {
  return title.trim().toLowerCase().replace(' ', '-');
}

function capitalize(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

module.exports = { slugify, capitalize };
