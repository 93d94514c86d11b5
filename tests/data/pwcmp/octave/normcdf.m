% Stand-in for the statistics package's normcdf, for pwcmp's pw_scale.m under core Octave.
function p = normcdf(x, mu, s)
  p = 0.5 * erfc(-(x - mu) ./ (s * sqrt(2)));
end
