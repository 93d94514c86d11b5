% Stand-in for MATLAB's optimoptions (not in core Octave), for pwcmp's pw_scale.m.
function o = optimoptions(solver, varargin)
  % shim for Octave: map MATLAB's fminunc options to optimset
  o = optimset('GradObj', 'on', 'Display', 'off', 'TolFun', 1e-12, 'TolX', 1e-12, 'MaxIter', 10000, 'MaxFunEvals', 100000);
end
