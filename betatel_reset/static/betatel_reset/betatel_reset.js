/* django-betatel-reset: stop a second click from sending a second email.
   Progressive: without JavaScript the form works the same, just unguarded. */
(function () {
  "use strict";

  var SELECTOR = "form[data-betatel-reset-form]";
  var RELEASE_AFTER_MS = 15000; // let the user try again if the answer never comes

  function release(form) {
    delete form.dataset.betatelResetSubmitting;
    form.removeAttribute("aria-busy");
    form.querySelectorAll("[type=submit]").forEach(function (button) {
      button.removeAttribute("aria-disabled");
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches(SELECTOR)) {
      return;
    }
    if (form.dataset.betatelResetSubmitting) {
      event.preventDefault();
      return;
    }
    form.dataset.betatelResetSubmitting = "true";
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("[type=submit]").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
    });
    window.setTimeout(function () {
      release(form);
    }, RELEASE_AFTER_MS);
  });

  // Coming back with the Back button restores the page as it was: unlock it.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      document.querySelectorAll(SELECTOR).forEach(release);
    }
  });
})();
