"""Static files of the study web page (index.html, app.js, style.css), shipped as package data."""
