% Stand-in for the statistics package's normpdf, for pwcmp's pw_scale.m under core Octave.
function p = normpdf(x, mu, s)
  p = exp(-0.5 * ((x - mu) ./ s).^2) ./ (s * sqrt(2*pi));
end
