% Stand-in for the statistics package's norminv, for pwcmp's pw_scale.m under core Octave.
function x = norminv(p, mu, s)
  x = mu - s * sqrt(2) * erfcinv(2 * p);
end
