/* The site's own script. */
