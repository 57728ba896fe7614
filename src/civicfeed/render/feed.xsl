<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed of civicfeed as a readable page in a web browser.
     Feed readers ignore it: they read the feed itself. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"
              doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="description"
                select="/rss/channel/description | /atom:feed/atom:subtitle"/>

  <xsl:template match="/">
    <html lang="de">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (Feed)</title>
        <style>
          body { margin: 0; font: 1.05rem/1.55 system-ui, sans-serif; color: #1a1a1a; }
          header, main { max-width: 52rem; margin: 0 auto; padding: 1rem 1.25rem; }
          .hint { border-left: 4px solid #0b5394; background: #eef4fb; padding: .75rem 1rem; }
          .entry { border: 1px solid #d0d0d0; border-radius: .5rem; padding: 1rem;
                   margin: 1rem 0; background: #f4f6f8; }
          .meta { color: #4a4a4a; font-size: .95rem; }
          a { color: #0b5394; }
        </style>
      </head>
      <body>
        <header>
          <h1><xsl:value-of select="$title"/></h1>
          <p><xsl:value-of select="$description"/></p>
          <div class="hint" role="note">
            <p><strong>Dies ist ein Feed.</strong> So abonnieren Sie ihn: Kopieren Sie die
            Adresse dieser Seite aus der Adresszeile in Ihren Feedreader. Neue Meldungen
            erscheinen dort von selbst.</p>
          </div>
        </header>
        <main>
          <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <article class="entry">
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <p class="meta"><xsl:value-of select="pubDate"/>
        <xsl:if test="source"> · <xsl:value-of select="source"/></xsl:if></p>
    </article>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article class="entry">
      <h2><a href="{atom:link[@rel='alternate' or not(@rel)][1]/@href}">
        <xsl:value-of select="atom:title"/></a></h2>
      <p class="meta">
        <xsl:choose>
          <xsl:when test="atom:published">
            <xsl:value-of select="substring(atom:published, 1, 10)"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="substring(atom:updated, 1, 10)"/></xsl:otherwise>
        </xsl:choose>
        <xsl:if test="atom:source"> · <xsl:value-of select="atom:source/atom:title"/></xsl:if></p>
    </article>
  </xsl:template>
</xsl:stylesheet>
